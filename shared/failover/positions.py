"""One region's side of a translation: offsets to frontiers (source) and frontiers to offsets (destination).

Both sides take the nearest index snapshot and read at most about K records
from it. Without an index (`scan=True`) they read from the log start: exact
too, but as slow as the topic is long.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from amity.failover.index import OffsetIndex, Snapshot
from amity.failover.reading import PartitionReader
from amity.failover.streams import Frontier, Stream, advance
from amity.failover.translation import PartitionCut, Progress, ResumeSearch

_START = Snapshot(0, {})


@dataclass(frozen=True, slots=True)
class Resume:
    """Where a group resumes in one destination partition, and what it will see again there."""

    partition: int
    offset: int
    end: int
    redelivered: int
    """Records from `offset` on that the group already processed; a lower bound when `counted_all` is False."""
    counted_all: bool
    seen: Frontier
    """Highest origin offset per stream this partition was seen to hold."""


def expected_streams(partition: int, processed: Mapping[Stream, int], latest: Snapshot | None) -> frozenset[Stream]:
    """Streams a destination partition may hold: those the index saw there, and the processed ones of its number.

    The mirror keeps a stream in the partition of its origin's number when the
    partition counts agree; a stream spread by key is found in the index.
    """
    homed = {stream for stream in processed if stream[2] == partition}
    return frozenset(homed.union(latest.seen) if latest is not None else homed)


class RegionPositions:
    """Translates between local offsets and stream frontiers in one region."""

    def __init__(self, index: OffsetIndex, reader: PartitionReader, count_limit: int = 1_000_000) -> None:
        self.index = index
        self.reader = reader
        self.count_limit = count_limit

    def indexed(self, topic: str) -> bool:
        return bool(self.index.progress(topic))

    def progress(self, topic: str, committed: Mapping[int, int], partitions: int) -> Progress:
        """What a group with these committed offsets has processed; partitions without one count as untouched."""
        return Progress.of(self.cut(topic, p, committed.get(p)) for p in range(partitions))

    def cut(self, topic: str, partition: int, committed: int | None) -> PartitionCut:
        latest = self.index.latest(topic, partition)
        held = frozenset(latest.seen) if latest is not None else frozenset()
        if committed is None:
            return PartitionCut(partition, {}, held)
        start = self.index.nearest(topic, partition, committed) or _START
        before = dict(start.seen)

        def take(_offset: int, stream: Stream, origin_offset: int) -> bool:
            advance(before, stream, origin_offset)
            return False

        self.reader.scan(topic, partition, start.offset, take, stop=committed)
        return PartitionCut(partition, before, held | frozenset(before))

    def resume(self, topic: str, partition: int, processed: Mapping[Stream, int]) -> Resume:
        """The first offset of `partition` holding a record the group has not processed."""
        start = self.index.last_uncrossed(topic, partition, dict(processed)) or _START
        latest = self.index.latest(topic, partition)
        search = ResumeSearch(processed, dict(start.seen), expected_streams(partition, processed, latest))
        counted = 0

        def take(offset: int, stream: Stream, origin_offset: int) -> bool:
            nonlocal counted
            if search.feed(offset, stream, origin_offset):
                return True
            if search.resume is not None:
                counted += 1
            return counted >= self.count_limit

        reached = self.reader.scan(topic, partition, start.offset, take)
        end = self.reader.watermarks(topic, partition)[1]
        offset = search.resume if search.resume is not None else reached
        return Resume(partition, offset, max(end, offset), search.redelivered, counted < self.count_limit,
                      search.seen)
