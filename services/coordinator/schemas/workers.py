"""Worker API models: registration, heartbeat, and the assignment a heartbeat returns."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from amity.coordinator.schemas.links import LinkPublic
from amity.coordinator.schemas.regions import RegionConnection
from amity.coordinator.schemas.rules import RuleSetPublic
from amity.stats import LinkId, StatsReport

WORKER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class WorkerRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=WORKER_NAME, description="For people: host or pod name")
    version: str | None = Field(default=None, max_length=64, description="The worker's amity version")


class WorkerRegistered(BaseModel):
    worker_id: str
    heartbeat_interval_s: float = Field(description="Send a heartbeat this often")
    timeout_s: float = Field(description="Silent this long, the worker's links go to others")


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generation: int | None = Field(default=None, ge=0, description="The assignment generation the worker runs")
    stats: StatsReport | None = Field(default=None, description="Cumulative counters of this worker run")


class AssignedLink(BaseModel):
    """One link this worker runs, with full connection settings of both ends."""

    link: LinkPublic
    source: RegionConnection
    destination: RegionConnection


class Assignment(BaseModel):
    """What a worker must run now; it changes only when `generation` does, rules when `rules.version` does."""

    worker_id: str
    generation: int = Field(ge=0)
    heartbeat_interval_s: float
    timeout_s: float
    links: list[AssignedLink] = Field(description="The links assigned to this worker")
    all_links: list[LinkPublic] = Field(description="Every link, paused ones included, for routing over the topology")
    rules: RuleSetPublic


class WorkerPublic(BaseModel):
    id: str
    name: str
    version: str | None = None
    registered_at: datetime
    last_seen: datetime | None = None
    running_generation: int | None = Field(default=None, description="The generation its last heartbeat said it runs")
    live: bool
    links: list[LinkId] = Field(description="Links assigned now (none while not live)")
