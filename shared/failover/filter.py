"""Skipping what a moved group already processed: zero re-deliveries for consumers that can ask.

Offsets alone cannot avoid re-delivering records when a destination partition
interleaves its streams differently from the source (active-active): the
resume offset is the first unprocessed record, and processed ones may follow
it. A consumer that checks each record against the frontier the group was
moved with skips exactly those, at the cost of one header parse per record,
until every stream has passed the frontier.
"""

from collections.abc import Mapping
from typing import Protocol

import redis

from amity.failover.checkpoints import CheckpointStore
from amity.failover.streams import Stream, origin_of
from amity.regions import Region


class Message(Protocol):
    """What the filter reads from a consumed record (confluent_kafka.Message has it)."""

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...


class ProcessedFilter:
    """Tells records, read in `region`, that the group processed before it was moved there."""

    def __init__(self, region: str, processed: Mapping[Stream, int]) -> None:
        self.region = region
        self.processed = dict(processed)

    @staticmethod
    def load(region: Region, group: str, topic: str) -> "ProcessedFilter":
        """The filter for `group` on `topic` in `region`, from the last failover or failback into it."""
        client = redis.Redis.from_url(region.redis)
        try:
            moved = CheckpointStore(client).moved(group, topic)
        finally:
            client.close()
        return ProcessedFilter(region.name, moved.progress().processed if moved is not None else {})

    def already_processed(self, msg: Message) -> bool:
        """True when the group processed this record in the region it was moved from."""
        if not self.processed:
            return False
        stream, origin_offset = origin_of(msg.headers(), self.region, (self.region, msg.topic(), msg.partition()),
                                          msg.offset())
        return origin_offset <= self.processed.get(stream, -1)
