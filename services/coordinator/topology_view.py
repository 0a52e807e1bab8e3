"""The topology as a dashboard draws it: region health, link states, and who cannot hear whom."""

from collections.abc import Iterable, Mapping

from amity.coordinator.assignment import owners
from amity.coordinator.schemas.links import LinkPublic
from amity.coordinator.schemas.regions import RegionHealth, Status
from amity.coordinator.schemas.stats import LinkStatsView
from amity.coordinator.schemas.topology import LinkEdge, LinkState, RegionNode, RegionPair, TopologyView
from amity.coordinator.store.assignment import AssignmentState
from amity.stats import LinkHealth
from amity.topology import Topology


def topology(regions: Iterable[str], health: Mapping[str, RegionHealth], links: Mapping[str, LinkPublic],
             state: AssignmentState, live_workers: Iterable[str], stats: Iterable[LinkStatsView],
             link_health: Mapping[str, Mapping[str, LinkHealth]] | None = None) -> TopologyView:
    """`link_health`: per worker, the health of its links at its last report (StatsStore.health)."""
    statuses = {name: health[name].status if name in health else Status.UNKNOWN for name in regions}
    running = {link: worker for link, worker in owners(state.workers).items() if worker in set(live_workers)}
    by_link = {view.link: view for view in stats}
    edges = []
    for link_id, link in links.items():
        view = by_link.get(link_id)
        worker = running.get(link_id)
        reported = (link_health or {}).get(worker, {}).get(link_id) if worker else None
        problem = (reported.problem or "failing") if reported is not None and not reported.healthy else None
        edges.append(LinkEdge(
            id=link_id, source=link.source, destination=link.destination, worker=worker,
            state=_state(link, worker, statuses, problem), problem=problem,
            records_per_s=view.throughput.records_per_s if view else 0.0, lag_records=view.lag_records if view else 0))
    active = [(link.source, link.destination) for link in links.values() if not link.paused]
    return TopologyView(generation=state.generation,
                        regions=[RegionNode(name=name, status=status) for name, status in statuses.items()],
                        links=edges, unreachable=unreachable(statuses, active))


def unreachable(regions: Iterable[str], edges: Iterable[tuple[str, str]]) -> list[RegionPair]:
    """Ordered pairs (a, b) where nothing written in a reaches b over the given directed edges."""
    missing = Topology(sorted(set(regions)), sorted(set(edges))).unreachable()
    return [RegionPair(source=source, destination=destination)
            for source, destinations in missing.items() for destination in sorted(destinations)]


def _state(link: LinkPublic, worker: str | None, statuses: Mapping[str, Status], problem: str | None) -> LinkState:
    if link.paused:
        return LinkState.PAUSED
    if worker is None:
        return LinkState.UNASSIGNED
    if statuses.get(link.source) is not Status.UP or statuses.get(link.destination) is not Status.UP:
        return LinkState.DEGRADED
    return LinkState.RETRYING if problem is not None else LinkState.RUNNING
