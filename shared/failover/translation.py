"""Exact offset translation between regions, as pure functions over origin streams.

Source side. A group's committed offset c in a source partition splits it in
two: records below c are processed, records from c on are not. Per stream the
processed records are a prefix (the mirror keeps a stream's order), so the
group's progress is a frontier: the highest processed origin offset per
stream, h_s (`processed_frontier`).

Destination side. In a destination partition the group must resume at the
first record whose origin offset is above h_s for its stream: every record
before it is processed, so nothing is lost, and no later offset would do
(`ResumeSearch`). Records after that point that are processed all the same
are delivered again; the search counts them. There are none when each
destination partition holds a single stream (active-passive), or more
generally when the destination interleaves its streams the way the source did
up to the group's position.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from amity.failover.streams import Frontier, Stream, advance


@dataclass(frozen=True, slots=True)
class PartitionCut:
    """One source partition at the group's committed offset."""

    partition: int
    before: Mapping[Stream, int]
    """Highest origin offset per stream among the records below the committed offset."""
    held: frozenset[Stream] = frozenset()
    """Every stream the partition is known to hold, below the offset or after it."""


@dataclass(frozen=True, slots=True)
class Progress:
    """A group's progress on a topic: the frontier, and the streams for which it is a safe underestimate."""

    processed: Frontier
    split: frozenset[Stream] = frozenset()

    @staticmethod
    def of(cuts: Iterable[PartitionCut]) -> "Progress":
        cuts = list(cuts)
        return Progress(processed_frontier(cuts), split_streams(cuts))


def split_streams(cuts: Iterable[PartitionCut]) -> frozenset[Stream]:
    """Streams seen in a partition of another number than their origin's: spread over partitions by key.

    The mirror keeps a stream in the partition of the same number when source
    and destination have as many partitions, and spreads it by key otherwise.
    """
    return frozenset(s for cut in cuts for s in (*cut.before, *cut.held) if s[2] != cut.partition)


def processed_frontier(cuts: Iterable[PartitionCut]) -> Frontier:
    """h_s for every stream the group has processed part of.

    A split stream's processed records are not one prefix, and only the
    smallest h over the partitions that hold it is safe: every record at or
    below it is processed in all of them. Records above it that were processed
    all the same are delivered again, and not counted as such.
    """
    cuts = list(cuts)
    split = split_streams(cuts)
    frontier: Frontier = {}
    for cut in cuts:
        for stream, offset in cut.before.items():
            if stream not in split:
                frontier[stream] = offset
    for stream in split:
        lowest = min(cut.before.get(stream, -1) for cut in cuts if stream in cut.before or stream in cut.held)
        if lowest >= 0:
            frontier[stream] = lowest
    return frontier


def crossed(seen: Mapping[Stream, int], processed: Mapping[Stream, int]) -> bool:
    """True when `seen` includes a record the group has not processed.

    Monotone along a partition (a running maximum only grows), so the index's
    snapshots can be binary-searched for the last one before the resume point.
    """
    return any(offset > processed.get(stream, -1) for stream, offset in seen.items())


@dataclass(slots=True)
class ResumeSearch:
    """Finds one destination partition's resume offset from records fed in offset order.

    Feeding starts at a point before which every record is processed (an
    index snapshot that has not `crossed`), with `seen` set to that snapshot's
    running maximum. After the resume offset it keeps counting processed
    records (re-deliveries) until every stream the partition holds has been
    seen up to the group's frontier: from there on each record is new.
    """

    processed: Mapping[Stream, int]
    seen: Frontier
    expected: frozenset[Stream] = frozenset()
    resume: int | None = None
    redelivered: int = 0
    _open: set[Stream] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._open = {s for s in (*self.expected, *self.seen) if self.seen.get(s, -1) < self.processed.get(s, -1)}

    def feed(self, offset: int, stream: Stream, origin_offset: int) -> bool:
        """Take the next record; True once no later record can change the result."""
        limit = self.processed.get(stream, -1)
        if origin_offset > limit:
            if self.resume is None:
                self.resume = offset
        elif self.resume is not None:
            self.redelivered += 1
        advance(self.seen, stream, origin_offset)
        if self.seen[stream] >= limit:
            self._open.discard(stream)
        else:
            self._open.add(stream)
        return self.resume is not None and not self._open

    @property
    def settled(self) -> bool:
        """True when the resume offset and the re-delivery count are final."""
        return self.resume is not None and not self._open


def behind(processed: Mapping[Stream, int], held: Mapping[Stream, int]) -> dict[Stream, tuple[int, int]]:
    """Streams the group processed further than the destination holds: stream -> (processed, held).

    Those records have not reached the destination yet (the mirror lags, or the
    source died first). When they arrive they land after the resume offset and
    are delivered again.
    """
    return {s: (h, held.get(s, -1)) for s, h in sorted(processed.items()) if held.get(s, -1) < h}
