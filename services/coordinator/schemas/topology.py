"""The topology view: what a dashboard needs to draw regions and links."""

from enum import StrEnum

from pydantic import BaseModel, Field

from amity.coordinator.schemas.regions import Status
from amity.stats import LinkId


class LinkState(StrEnum):
    RUNNING = "running"  # assigned to a live worker, both regions up
    PAUSED = "paused"
    UNASSIGNED = "unassigned"  # no live worker holds it
    DEGRADED = "degraded"  # assigned, but a region it joins is down or unchecked
    RETRYING = "retrying"  # both regions up, but its worker reports it failing and retrying (see `problem`)


class RegionNode(BaseModel):
    name: str
    status: Status


class LinkEdge(BaseModel):
    id: LinkId
    source: str
    destination: str
    state: LinkState
    worker: str | None = None
    records_per_s: float = 0.0
    lag_records: int = 0
    problem: str | None = Field(default=None, description="What the link's worker last saw fail, while it retries")


class RegionPair(BaseModel):
    source: str
    destination: str


class TopologyView(BaseModel):
    generation: int
    regions: list[RegionNode]
    links: list[LinkEdge]
    unreachable: list[RegionPair] = Field(
        description="Region pairs where writes in source never reach destination over active links")
