"""The stats report a mirror worker sends the coordinator with every heartbeat.

Counters are cumulative since the worker's run started (`run_id`): a report
never carries deltas, so a lost heartbeat loses nothing. The coordinator turns
successive reports into totals and per-minute rates, and treats a new `run_id`
(or a counter that went down) as a restart from zero. `lag_records` and
`lag_seconds` are gauges: the latest value counts, not a sum over time.

Workers count on `TopicCounters` (plain attributes, no validation per record)
and build the pydantic `StatsReport` only when a heartbeat is due.
"""

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_COUNT = 2**53 - 1  # exact in every JSON reader, doubles included
MAX_PROBLEM_CHARS = 1000

Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Seconds = Annotated[float, Field(ge=0, allow_inf_nan=False)]
LINK_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
LinkId = Annotated[str, Field(pattern=LINK_ID_PATTERN, description="A link's id, e.g. us-to-eu")]
TopicName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]{1,249}$", description="A Kafka topic name")]
Reason = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Why, e.g. loop or too-large")]
ReasonCounts = Annotated[dict[Reason, Count], Field(max_length=64)]


class ConflictCounts(BaseModel):
    """What the conflict resolver did with records of one topic."""

    model_config = ConfigDict(extra="forbid")

    detected: Count = 0
    resolved: Count = 0
    stale: Count = Field(default=0, description="Records older than the stored version, not applied")
    conflicts_topic: Count = Field(default=0, description="Records written to the conflicts topic")


class TopicStats(BaseModel):
    """One (link, topic) of one worker run."""

    model_config = ConfigDict(extra="forbid")

    link: LinkId
    topic: TopicName = Field(description="The topic's name in the source region")
    replicated: Count = Field(default=0, description="Records written to the destination")
    bytes: Count = Field(default=0, description="Key and value bytes written to the destination")
    keyless: Count = Field(default=0, description="Records without a key (never conflict-checked)")
    dropped: ReasonCounts = Field(default_factory=dict, description="Loop-prevention drops by reason")
    dead_lettered: ReasonCounts = Field(default_factory=dict, description="Records sent to the DLQ by reason")
    conflicts: ConflictCounts = Field(default_factory=ConflictCounts)
    lag_records: Count = Field(default=0, description="Gauge: records behind the source's end")
    lag_seconds: Seconds = Field(default=0.0, description="Gauge: age of the last record replicated")


class LinkHealth(BaseModel):
    """Whether one link of the worker replicates, or fails and retries, and why."""

    model_config = ConfigDict(extra="forbid")

    link: LinkId
    healthy: bool
    problem: str = Field(default="", max_length=MAX_PROBLEM_CHARS,
                         description="What the link last failed on while unhealthy, e.g. which region does not answer")


class StatsReport(BaseModel):
    """Everything one worker run has counted so far, one entry per (link, topic), and each running link's health."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                        description="New for every start of the worker process; counters restart from 0 with it")
    topics: list[TopicStats] = Field(default_factory=list, max_length=100_000)
    links: list[LinkHealth] = Field(default_factory=list, max_length=10_000,
                                    description="The links the worker runs now (older workers send none)")

    @model_validator(mode="after")
    def _one_entry_per_topic(self) -> "StatsReport":
        seen: set[tuple[str, str]] = set()
        for entry in self.topics:
            key = (entry.link, entry.topic)
            if key in seen:
                raise ValueError(f"link {entry.link!r} topic {entry.topic!r} is reported twice")
            seen.add(key)
        return self


@dataclass(slots=True)
class TopicCounters:
    """A worker's running counters for one (link, topic): cheap to bump per record."""

    replicated: int = 0
    bytes: int = 0
    keyless: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    conflicts_detected: int = 0
    conflicts_resolved: int = 0
    conflicts_stale: int = 0
    conflicts_topic: int = 0
    lag_records: int = 0
    lag_seconds: float = 0.0

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def dead_letter(self, reason: str) -> None:
        self.dead_lettered[reason] = self.dead_lettered.get(reason, 0) + 1

    def snapshot(self, link: str, topic: str) -> TopicStats:
        """The counters as a report entry (copies, so counting can go on while it is sent)."""
        return TopicStats(
            link=link, topic=topic, replicated=self.replicated, bytes=self.bytes, keyless=self.keyless,
            dropped=dict(self.dropped), dead_lettered=dict(self.dead_lettered),
            conflicts=ConflictCounts(detected=self.conflicts_detected, resolved=self.conflicts_resolved,
                                     stale=self.conflicts_stale, conflicts_topic=self.conflicts_topic),
            lag_records=self.lag_records, lag_seconds=self.lag_seconds,
        )
