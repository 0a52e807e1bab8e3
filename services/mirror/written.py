"""A batch's resolved records as written, and their delivery reports, kept for landing (amity.tails).

Each resolved record a link writes may have to land once acknowledged: its state hash and rank, and where it
sits. Nearly always nothing lands, since no other writer is registered on the link's partitions
(`Tails.may_have_raced`). So the producer reports a batch's resolved records to one callback of the batch,
which keeps each report unread, and a report is paired with its record's version only when a landing needs
it: no binding per record (a functools.partial per record took 0.40 µs to build and call, this callback
0.10, timeit).

The pairing needs no more than the reports: the producer acknowledges a partition's records in the order they
were written, and a key's records share a partition, so the reports of a (destination topic, key) come in the
order its records were written.
"""

from collections import defaultdict, deque
from collections.abc import Callable

from amity.mirror.acks import Batch
from amity.mirror.router import Headers, Message
from amity.tails import Report

Version = tuple[bytes, bytes]  # a resolved record's state hash and rank


class ResolvedWrites:
    """The resolved records of one batch as written (`forward`, with `versions` aligned), those whose ids are in
    `apart` left out: they report through a callback of their own (a suspect written alone)."""

    __slots__ = ("batch", "reports", "_forward", "_versions", "_destination", "_apart")

    def __init__(self, batch: Batch, forward: list[tuple[Message, Headers]], versions: list[Version | None],
                 destination: Callable[[str], str], apart: set[int]) -> None:
        self.batch = batch
        self.reports: list = []  # delivery reports of the acknowledged ones, in the order they came
        self._forward = forward
        self._versions = versions
        self._destination = destination
        self._apart = apart

    def delivered(self, err, msg) -> None:
        """The producer's callback for the batch's resolved records: the batch's, and the report kept."""
        self.batch.delivered(err, msg)
        if err is None:
            self.reports.append(msg)

    def paired(self) -> list[Report]:
        """Each kept report with its record's version, in report order. Only for a batch without errors: a
        record whose write failed has no report, and a later one of its key would take its version."""
        queues: defaultdict[tuple[str, bytes | None], deque[Version]] = defaultdict(deque)
        for (msg, _headers), version in zip(self._forward, self._versions):
            if version is not None and id(msg) not in self._apart:
                queues[(self._destination(msg.topic()), msg.key())].append(version)
        return [(*queues[(report.topic(), report.key())].popleft(), report) for report in self.reports]
