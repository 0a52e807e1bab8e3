"""A rebalance between two reads of one batch: records read before their partition was revoked are not the link's.

librdkafka drops a revoked partition's records from the read that serves the revocation, but not from reads
that returned before it. A link's batch is made of several reads (`LinkRunner._next_batch`), so the real
consumer is wrapped here to serve a real rebalance (a second member joining the link's group) in the read
that follows a record's: the interleaving a busy worker meets now and then, forced every time.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message

from amity.headers import decode, find_provenance
from amity.links import Link
from amity.mirror.link import LinkRunner
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.regions import Region
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import wait_for

RECORDS = 3_000


class RebalanceAfterFirstRecord:
    """The link's consumer, whose first consume() after a poll() that returned a record serves a rebalance.

    That read pauses the link's partitions (which drops what is fetched and not yet read), lets a second member
    join the group and reads until the revocation has been served, then resumes them. Paused, those reads return
    nothing before it: the link gets what one real read that served a revocation returns, and its polled record
    is outdated.
    """

    def __init__(self, consumer: Consumer, revoked: threading.Event, join: Callable[[], None]) -> None:
        self._consumer = consumer
        self._revoked = revoked
        self._join: Callable[[], None] | None = join
        self._record_polled = False

    @property
    def forced(self) -> bool:
        """Whether the second member was let in by this wrapper's read, as the test means it to be."""
        return self._join is None

    def poll(self, timeout: float) -> Message | None:
        msg = self._consumer.poll(timeout)
        self._record_polled = msg is not None and msg.error() is None
        return msg

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if not self._record_polled or self._join is None:
            return self._consumer.consume(num_messages, timeout=timeout)
        paused = self._consumer.assignment()
        self._consumer.pause(paused)
        self._join()
        self._join = None
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the link's partitions were not revoked"
            read = self._consumer.consume(num_messages, timeout=0.2)
            if self._revoked.is_set():
                self._consumer.resume(paused)  # a pause outlives the assignment in librdkafka
                return read
            assert read == [], "a paused consumer returned records"

    def __getattr__(self, name: str):  # noqa: ANN204 - everything else is the real consumer's
        return getattr(self._consumer, name)


class OtherMember:
    """A plain consumer in the link's group, polling on a thread until closed: it takes partitions, reads
    nothing of the link's offsets (those of an exactly-once link live in the destination) and commits none."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                                   "partition.assignment.strategy": "range", "session.timeout.ms": 10_000,
                                   "heartbeat.interval.ms": 2_000})
        self._topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def join(self) -> None:
        self._consumer.subscribe([self._topic])
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.2)

    def leave(self) -> None:
        """Leave the group (once; a member that never joined just closes)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._consumer.close()


@pytest.mark.parametrize("delivery", ["exactly-once", "at-least-once"])
def test_records_read_before_a_revocation_are_left_to_the_next_owner(regions: dict[str, Region], topic: str,
                                                                     delivery: str) -> None:
    """No restart, and every record once: at-least-once too, since its revocations here commit all that was
    acknowledged; a polled record written after its partition was revoked was read again, a duplicate."""
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=2)
    produce(us.bootstrap, topic, [(b"k%d" % (i % 7), b"%d" % i) for i in range(RECORDS)])
    link = Link(source="us", destination="eu", delivery=delivery, include=[topic])
    runner = LinkRunner(link, us, eu, Router(link, [link], ["us", "eu"], 8), MirrorSettings(), LinkStats(link.name))
    other = OtherMember(us.bootstrap, runner._consumer_config()["group.id"], topic)
    revoked, rebalanced, problems = threading.Event(), threading.Event(), []
    wrapped: list[RebalanceAfterFirstRecord] = []
    setup, on_revoke, on_assign, healthy = runner._setup, runner._on_revoke, runner._on_assign, runner.stats.healthy

    def revoke(consumer: Consumer, partitions: list) -> None:
        on_revoke(consumer, partitions)
        revoked.set()

    def assign(consumer: Consumer, partitions: list) -> None:
        on_assign(consumer, partitions)
        if revoked.is_set():
            rebalanced.set()

    def set_up() -> None:
        setup()
        if not wrapped:  # a restarted link reads on its own
            wrapped.append(RebalanceAfterFirstRecord(runner.consumer, revoked, other.join))
            runner.consumer = wrapped[0]

    def report(ok: bool, reason: str) -> None:
        if not ok:
            problems.append(reason)
        healthy(ok, reason)

    runner._on_revoke, runner._on_assign, runner._setup, runner.stats.healthy = revoke, assign, set_up, report
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_for(rebalanced.is_set, timeout_s=90, message="a rebalance between two reads of a batch")
        other.leave()
        seen = wait_for(lambda: _coordinates(eu.bootstrap, topic, RECORDS), timeout_s=120,
                        message=f"{RECORDS} records in eu")
    finally:
        runner.stop()
        thread.join(60)
        other.leave()
    assert wrapped[0].forced
    assert problems == [], f"the link restarted: {problems}"
    assert len(seen) == RECORDS, "gap: some source records are missing"
    assert set(seen.values()) == {1}, f"duplicates: {sum(v - 1 for v in seen.values())}"


def _coordinates(bootstrap: str, topic: str, total: int) -> Counter | None:
    """How often each source record is visible in eu, once all of them are."""
    seen = Counter((p.partition, p.offset) for p in
                   (decode(find_provenance(m.headers())) for m in read_all(bootstrap, topic)))
    return seen if len(seen) >= total else None
