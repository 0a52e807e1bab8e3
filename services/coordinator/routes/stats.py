"""/v1/stats: replication counters, last-minute throughput and lag, per link and topic."""

from typing import Annotated

from fastapi import APIRouter, Query

from amity.coordinator.deps import CoordinatorDep, Reader
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.coordinator.schemas.stats import StatsView

router = APIRouter(prefix="/v1/stats", tags=["stats"], responses=PROBLEM_RESPONSES, dependencies=[Reader])


@router.get("")
async def get_stats(c: CoordinatorDep, link: Annotated[str | None, Query(max_length=100)] = None,
                    topic: Annotated[str | None, Query(max_length=249)] = None) -> StatsView:
    """Totals since the coordinator's state was created, the last minute, and lag from live workers."""
    return await c.stats.view(await c.live_workers(), c.clock(), link, topic)
