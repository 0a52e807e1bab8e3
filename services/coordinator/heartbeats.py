"""A worker's heartbeat: note it is alive, fold in its stats, hand it its assignment."""

from amity.coordinator.context import Coordinator
from amity.coordinator.schemas.regions import RegionConnection
from amity.coordinator.schemas.rules import RuleSetPublic
from amity.coordinator.schemas.workers import AssignedLink, Assignment, Heartbeat
from amity.coordinator.settings import CoordinatorSettings
from amity.coordinator.store.assignment import Snapshot


async def heartbeat(c: Coordinator, worker_id: str, beat: Heartbeat) -> Assignment:
    now = c.clock()
    await c.workers.touch(worker_id, now, beat.generation)
    if beat.stats is not None:
        await c.stats.record(worker_id, beat.stats, now)
    snapshot = await c.assignment.refresh(await c.workers.live(now, c.settings.worker_timeout_s))
    return assignment_for(worker_id, snapshot, await c.rules.current(), c.settings)


def assignment_for(worker_id: str, snapshot: Snapshot, rules: RuleSetPublic,
                   settings: CoordinatorSettings) -> Assignment:
    """The worker's links with both regions' connection settings, every link, and the rules."""
    assigned = []
    for link_id in snapshot.state.workers.get(worker_id, []):
        link = snapshot.links[link_id]
        assigned.append(AssignedLink(link=link, source=RegionConnection.of(snapshot.regions[link.source]),
                                     destination=RegionConnection.of(snapshot.regions[link.destination])))
    return Assignment(worker_id=worker_id, generation=snapshot.state.generation,
                      heartbeat_interval_s=settings.heartbeat_interval_s, timeout_s=settings.worker_timeout_s,
                      links=assigned, all_links=list(snapshot.links.values()), rules=rules)
