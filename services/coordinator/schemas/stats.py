"""Stats API models: totals, last-minute rates and lag per (link, topic) and per link."""

from pydantic import BaseModel, Field

from amity.stats import ConflictCounts, LinkId


class Counts(BaseModel):
    replicated: int = 0
    bytes: int = 0
    keyless: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    dead_lettered: dict[str, int] = Field(default_factory=dict)
    conflicts: ConflictCounts = Field(default_factory=ConflictCounts)


class Throughput(BaseModel):
    records_per_s: float = 0.0
    bytes_per_s: float = 0.0


class TopicStatsView(BaseModel):
    link: LinkId
    topic: str
    total: Counts = Field(description="Since the coordinator's state was created")
    last_minute: Counts
    throughput: Throughput = Field(description="Over the last minute")
    lag_records: int = Field(default=0, description="Sum over live workers' latest reports")
    lag_seconds: float = Field(default=0.0, description="Largest over live workers' latest reports")


class LinkStatsView(BaseModel):
    link: LinkId
    topics: int
    total: Counts
    last_minute: Counts
    throughput: Throughput
    lag_records: int = 0
    lag_seconds: float = 0.0


class StatsView(BaseModel):
    links: list[LinkStatsView]
    topics: list[TopicStatsView]
