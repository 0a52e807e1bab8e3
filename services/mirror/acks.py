"""At-least-once bookkeeping: which source offsets are safe to commit.

A source offset may be committed only when the destination acknowledged every
record before it in that partition. Batches are produced in order and the
idempotent producer keeps per-partition order, so the committable position is
that of the longest prefix of fully acknowledged batches.
"""

from collections import deque
from dataclasses import dataclass, field

TopicPartitionKey = tuple[str, int]


@dataclass(slots=True)
class Batch:
    """One consumed batch: where it ends per source partition and how many writes are unacknowledged."""

    positions: dict[TopicPartitionKey, int]
    pending: int = 0
    sealed: bool = False
    errors: list[tuple[object, object]] = field(default_factory=list)

    def sent(self) -> None:
        self.pending += 1

    def delivered(self, err: object, msg: object) -> None:
        """The producer's delivery callback, one bound method shared by the whole batch."""
        self.pending -= 1
        if err is not None:
            self.errors.append((err, msg))

    @property
    def done(self) -> bool:
        return self.sealed and self.pending == 0


class AckTracker:
    """Batches in flight, oldest first."""

    def __init__(self) -> None:
        self._batches: deque[Batch] = deque()

    def open(self, positions: dict[TopicPartitionKey, int]) -> Batch:
        batch = Batch(positions)
        self._batches.append(batch)
        return batch

    def failed(self) -> list[tuple[object, object]]:
        """Delivery errors of any batch still tracked."""
        return [error for batch in self._batches for error in batch.errors]

    def pop_committable(self) -> dict[TopicPartitionKey, int]:
        """Positions of the acknowledged prefix, removed from tracking; empty when nothing new is safe."""
        positions: dict[TopicPartitionKey, int] = {}
        while self._batches and self._batches[0].done and not self._batches[0].errors:
            positions.update(self._batches.popleft().positions)
        return positions

    @property
    def in_flight(self) -> int:
        return sum(batch.pending for batch in self._batches)

    def clear(self) -> None:
        self._batches.clear()
