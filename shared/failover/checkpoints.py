"""Checkpoints and ownership marks, kept in the Redis of the region they serve.

A checkpoint is a group's progress on a topic in its source region, as a
stream frontier, stored in each region it may fail over to. It is written
while the source is alive; a failover after the source has died translates
from it. Its size is one entry per stream, whatever the topic's length.

The progress a group was moved with is kept in the region it moved to, so a
consumer there can tell the records it already processed (amity.failover.filter).

An ownership mark records offsets that Amity itself committed into a group
(by a failover, a failback or the continuous sync). Offsets equal to the mark
are Amity's copy, not the group's own progress: they are never exported as a
checkpoint (so two regions cannot echo a group back and forth), and only they
may be overwritten by the continuous sync (so it never moves a group that
consumed on its own).
"""

import json
import time

import redis
from pydantic import BaseModel, ConfigDict, Field

from amity.failover.index import PREFIX
from amity.failover.streams import from_wire, to_wire
from amity.failover.translation import Progress


class Checkpoint(BaseModel):
    """A group's progress on `topic` in region `source`, as of `taken_at_ms`."""

    model_config = ConfigDict(frozen=True)

    source: str
    group: str
    topic: str
    committed: dict[int, int] = Field(description="The group's committed offsets in the source, per partition")
    frontier: list[tuple[str, str, int, int]] = Field(
        description="Highest processed origin offset per stream: [origin, topic, partition, offset]")
    split: list[tuple[str, str, int]] = Field(default_factory=list, description="Streams spread over partitions")
    taken_at_ms: int

    @staticmethod
    def of(source: str, group: str, topic: str, committed: dict[int, int], progress: Progress) -> "Checkpoint":
        return Checkpoint(source=source, group=group, topic=topic, committed=committed,
                          frontier=[tuple(entry) for entry in to_wire(progress.processed)],
                          split=sorted(progress.split), taken_at_ms=int(time.time() * 1000))

    def progress(self) -> Progress:
        return Progress(from_wire(self.frontier), frozenset(tuple(s) for s in self.split))

    def age_s(self) -> float:
        return max(time.time() - self.taken_at_ms / 1000, 0.0)


def checkpoint_key(source: str, group: str, topic: str) -> str:
    return f"{PREFIX}:checkpoint:{source}:{topic}:{group}"


def mark_key(group: str, topic: str) -> str:
    return f"{PREFIX}:owned:{topic}:{group}"


def moved_key(group: str, topic: str) -> str:
    return f"{PREFIX}:moved:{topic}:{group}"


class CheckpointStore:
    """Checkpoints received from other regions, and ownership marks of this region's groups."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def save(self, checkpoint: Checkpoint) -> None:
        self.redis.set(checkpoint_key(checkpoint.source, checkpoint.group, checkpoint.topic),
                       checkpoint.model_dump_json())

    def load(self, source: str, group: str, topic: str) -> Checkpoint | None:
        raw = self.redis.get(checkpoint_key(source, group, topic))
        return Checkpoint.model_validate_json(raw) if raw is not None else None

    def save_moved(self, topic: str, checkpoint: Checkpoint) -> None:
        """The progress a failover or failback moved the group here with, on `topic` (its name here)."""
        self.redis.set(moved_key(checkpoint.group, topic), checkpoint.model_dump_json())

    def moved(self, group: str, topic: str) -> Checkpoint | None:
        raw = self.redis.get(moved_key(group, topic))
        return Checkpoint.model_validate_json(raw) if raw is not None else None

    def mark_owned(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        self.redis.set(mark_key(group, topic), json.dumps({str(p): o for p, o in sorted(offsets.items())}))

    def owned(self, group: str, topic: str) -> dict[int, int] | None:
        """The offsets Amity last committed into the group on `topic` here, if any."""
        raw = self.redis.get(mark_key(group, topic))
        return {int(p): o for p, o in json.loads(raw).items()} if raw is not None else None
