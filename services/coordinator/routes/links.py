"""/v1/links: links between regions, topology shortcuts, pause/resume and dry runs."""

from typing import Annotated

from fastapi import APIRouter, Path

from amity.coordinator.deps import Actor, CoordinatorDep, Reader
from amity.coordinator.errors import InvalidRequestError
from amity.coordinator.link_checks import first_collision, plan, unknown_regions
from amity.coordinator.probes import list_topics
from amity.coordinator.schemas.links import (
    ActivePassiveCreate,
    HubCreate,
    HubDirection,
    LinkCreate,
    LinkOptions,
    LinkPlan,
    LinkPublic,
    LinksCreated,
    LinkUpdate,
    MeshCreate,
    TopicMapping,
)
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.links import Link
from amity.stats import LINK_ID_PATTERN

router = APIRouter(prefix="/v1/links", tags=["links"], responses=PROBLEM_RESPONSES)
LinkIdPath = Annotated[str, Path(pattern=LINK_ID_PATTERN, description="Link id, e.g. us-to-eu")]


@router.get("", dependencies=[Reader])
async def list_links(c: CoordinatorDep) -> list[LinkPublic]:
    return list((await c.links.all()).values())


@router.get("/{link_id}", dependencies=[Reader])
async def get_link(link_id: LinkIdPath, c: CoordinatorDep) -> LinkPublic:
    return await c.links.get(link_id)


@router.post("", status_code=201)
async def create_link(new: LinkCreate, c: CoordinatorDep, actor: Actor) -> LinkPublic:
    """Refused for unregistered regions, and when another link from the same source to the same
    destination may write the same destination topic."""
    [created] = await c.links.create([(new.link_id(), new.as_link())], actor)
    return created


@router.patch("/{link_id}")
async def update_link(link_id: LinkIdPath, update: LinkUpdate, c: CoordinatorDep, actor: Actor) -> LinkPublic:
    return await c.links.change(link_id, update.apply, actor)


@router.post("/{link_id}/pause")
async def pause_link(link_id: LinkIdPath, c: CoordinatorDep, actor: Actor) -> LinkPublic:
    """Workers stop the link at their next heartbeat; its consumer offsets stay, so resume carries on."""
    return await c.links.change(link_id, lambda link: link.model_copy(update={"paused": True}), actor)


@router.post("/{link_id}/resume")
async def resume_link(link_id: LinkIdPath, c: CoordinatorDep, actor: Actor) -> LinkPublic:
    return await c.links.change(link_id, lambda link: link.model_copy(update={"paused": False}), actor)


@router.delete("/{link_id}", status_code=204)
async def delete_link(link_id: LinkIdPath, c: CoordinatorDep, _: Actor) -> None:
    await c.links.delete(link_id)


@router.post("/mesh", status_code=201)
async def create_mesh(mesh: MeshCreate, c: CoordinatorDep, actor: Actor) -> LinksCreated:
    """Links both ways between every two regions; links already there with the same settings are kept."""
    pairs = [(a, b) for a in mesh.regions for b in mesh.regions if a != b]
    return await _create_all(c, mesh, pairs, actor)


@router.post("/hub-and-spoke", status_code=201)
async def create_hub_and_spoke(hub: HubCreate, c: CoordinatorDep, actor: Actor) -> LinksCreated:
    """Links between the hub and each spoke (both ways, or one way with `direction`), none between spokes."""
    if hub.hub in hub.spokes:
        raise InvalidRequestError(f"region {hub.hub!r} cannot be both the hub and a spoke")
    pairs = []
    for spoke in hub.spokes:
        if hub.direction in (HubDirection.BOTH, HubDirection.TO_HUB):
            pairs.append((spoke, hub.hub))
        if hub.direction in (HubDirection.BOTH, HubDirection.FROM_HUB):
            pairs.append((hub.hub, spoke))
    return await _create_all(c, hub, pairs, actor)


@router.post("/active-passive", status_code=201)
async def create_active_passive(pair: ActivePassiveCreate, c: CoordinatorDep, actor: Actor) -> LinksCreated:
    """One link from the active region to its standby."""
    if pair.active == pair.passive:
        raise InvalidRequestError(f"region {pair.active!r} cannot be its own standby")
    return await _create_all(c, pair, [(pair.active, pair.passive)], actor)


@router.post("/dry-run", dependencies=[Reader])
async def dry_run_new(new: LinkCreate, c: CoordinatorDep) -> LinkPlan:
    """What a link would replicate if created now, and why creating it would be refused, if it would."""
    link = new.as_link()
    unknown = unknown_regions(link, (await c.regions.all()).keys())
    if unknown:
        raise InvalidRequestError(f"regions {unknown} are not registered; register them first (amity region add)")
    others = {i: other.as_link() for i, other in (await c.links.all()).items() if i != new.link_id()}
    return await _plan(c, link, first_collision(link, others))


@router.get("/{link_id}/dry-run", dependencies=[Reader])
async def dry_run(link_id: LinkIdPath, c: CoordinatorDep) -> LinkPlan:
    """What the link replicates from the source's existing topics, and under which names."""
    return await _plan(c, (await c.links.get(link_id)).as_link(), None)


async def _create_all(c: CoordinatorDep, options: LinkOptions, pairs: list[tuple[str, str]], actor: str
                      ) -> LinksCreated:
    links = [options.between(source, destination) for source, destination in pairs]
    created = await c.links.create([(link.link_id(), link.as_link()) for link in links], actor, keep_identical=True)
    return LinksCreated(links=created)


async def _plan(c: CoordinatorDep, link: Link, problem: str | None) -> LinkPlan:
    topics = await list_topics(await c.regions.get(link.source), c.settings.probe_timeout_s)
    selected, skipped = plan(link, topics)
    return LinkPlan(source=link.source, destination=link.destination, problem=problem, skipped=skipped,
                    topics=[TopicMapping(source_topic=s, destination_topic=d) for s, d in selected])
