"""/v1/topology: regions, links and their health, for drawing."""

from fastapi import APIRouter

from amity.coordinator.deps import CoordinatorDep, Reader
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.coordinator.schemas.topology import TopologyView
from amity.coordinator.topology_view import topology

router = APIRouter(prefix="/v1/topology", tags=["topology"], responses=PROBLEM_RESPONSES, dependencies=[Reader])


@router.get("")
async def get_topology(c: CoordinatorDep) -> TopologyView:
    live = await c.live_workers()
    regions, health, links = await c.regions.all(), await c.regions.health(), await c.links.all()
    state = await c.assignment.current()
    stats, link_health = await c.stats.read(live, c.clock())
    return topology(regions, health, links, state, live, stats.links, link_health)
