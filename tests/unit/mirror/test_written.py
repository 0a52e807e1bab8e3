"""A batch's resolved records keep their delivery reports unread, and each report pairs with its record's version
(amity.mirror.written). The produce test writes through librdkafka's in-process mock cluster."""

from confluent_kafka import KafkaError, Message, Producer

from amity.links import Link
from amity.mirror.acks import Batch
from amity.mirror.written import ResolvedWrites
from amity.tails import landing_of

LINK = Link(source="us", destination="eu")


def _consumed(offset: int, key: bytes, topic: str = "orders") -> Message:
    return Message(topic=topic, partition=0, offset=offset, key=key, value=b"v%d" % offset,
                   timestamp=(1, 1_700_000_000_000 + offset))


def _report(topic: str, key: bytes, partition: int, offset: int) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=key)


def _writes(forward, versions, apart: set[int] = frozenset()) -> ResolvedWrites:
    return ResolvedWrites(Batch({}), [(msg, []) for msg in forward], versions, lambda topic: f"eu.{topic}", apart)


def test_reports_pair_with_their_keys_versions_in_write_order_whatever_order_the_keys_come_in() -> None:
    forward = [_consumed(0, b"a"), _consumed(1, b"b"), _consumed(2, b"a"), _consumed(3, b"c"), _consumed(4, b"b")]
    versions = [(b"sa", b"a1"), (b"sb", b"b1"), (b"sa", b"a2"), None, (b"sb", b"b2")]
    writes = _writes(forward, versions)
    reports = [_report("eu.orders", b"b", 1, 10), _report("eu.orders", b"a", 0, 7), _report("eu.orders", b"b", 1, 11),
               _report("eu.orders", b"a", 0, 8)]
    for report in reports:
        writes.delivered(None, report)
    assert [(state, rank, report.offset()) for state, rank, report in writes.paired()] == [
        (b"sb", b"b1", 10), (b"sa", b"a1", 7), (b"sb", b"b2", 11), (b"sa", b"a2", 8)]


def test_a_key_is_paired_within_its_destination_topic() -> None:
    forward = [_consumed(0, b"k", "orders"), _consumed(1, b"k", "payments")]
    writes = _writes(forward, [(b"so", b"o1"), (b"sp", b"p1")])
    writes.delivered(None, _report("eu.payments", b"k", 0, 3))
    writes.delivered(None, _report("eu.orders", b"k", 0, 9))
    assert [(state, report.topic()) for state, _, report in writes.paired()] == [
        (b"sp", "eu.payments"), (b"so", "eu.orders")]


def test_records_reporting_elsewhere_take_no_version() -> None:
    forward = [_consumed(0, b"k"), _consumed(1, b"k")]
    writes = _writes(forward, [(b"s", b"suspect"), (b"s", b"next")], apart={id(forward[0])})
    writes.delivered(None, _report("eu.orders", b"k", 0, 5))
    assert [rank for _, rank, _ in writes.paired()] == [b"next"]


def test_a_report_counts_for_the_batch_and_a_failure_is_its_error_not_a_kept_report() -> None:
    writes = _writes([_consumed(0, b"k")], [(b"s", b"r")])
    writes.batch.pending = 2
    error = KafkaError(KafkaError._MSG_TIMED_OUT)
    failed, delivered = _report("eu.orders", b"k", 0, -1), _report("eu.orders", b"k", 0, 4)
    writes.delivered(error, failed)
    writes.delivered(None, delivered)
    assert writes.batch.pending == 0
    assert writes.batch.errors == [(error, failed)]
    assert writes.reports == [delivered]


def test_produced_resolved_records_report_to_their_batch_and_pair_where_the_cluster_put_them(idle_runner) -> None:
    runner = idle_runner(LINK)
    producer = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    batch, landings = Batch({}), []
    forward = [(_consumed(i, b"k%d" % (i % 4)), [("amity-prov", b"h%d" % i)]) for i in range(8)]
    versions = [None if i % 3 == 0 else (b"state%d" % i, b"rank%d" % i) for i in range(8)]
    writes = ResolvedWrites(batch, forward, versions, runner._destination_topic, set())
    runner._produce_all(producer, forward, batch.delivered, versions, landings, writes)
    batch.pending += len(forward)
    assert producer.flush(30) == 0
    assert batch.pending == 0 and batch.errors == []
    assert landings == [], "no record took the callback bound per record"
    paired = [landing_of(*report) for report in writes.paired()]
    assert sorted((landing.state_key, landing.rank, landing.key, landing.topic) for landing in paired) == [
        (b"state%d" % i, b"rank%d" % i, b"k%d" % (i % 4), "orders") for i in (1, 2, 4, 5, 7)]
    by_key: dict[bytes, list[tuple[int, bytes]]] = {}
    for landing in paired:
        by_key.setdefault(landing.key, []).append((landing.offset, landing.rank))
    for written in by_key.values():  # ranks name their record's place in the batch: rising in write order
        assert [rank for _, rank in sorted(written)] == sorted(rank for _, rank in written), (
            "a key's versions pair with its reports in write order")


class _Tails:
    """A writer's tails that answers whether it may have raced, and records what it is asked to land."""

    def __init__(self, raced: bool) -> None:
        self.raced = raced
        self.landed: list[list] = []

    def may_have_raced(self) -> bool:
        return self.raced

    def land(self, landings: list) -> int:
        self.landed.append(landings)
        return 0


class _Unread:
    """A delivery report that fails the test if read."""

    def __getattr__(self, name: str):
        raise AssertionError(f"the report was read ({name})")


def test_a_writer_that_cannot_have_raced_lands_nothing_and_reads_no_report(idle_runner) -> None:
    runner = idle_runner(LINK)
    runner.tails = _Tails(raced=False)
    writes = _writes([_consumed(0, b"k")], [(b"s", b"r")])
    writes.reports.append(_Unread())
    runner._land([(b"s", b"r", _Unread())], [writes])
    assert runner.tails.landed == []


def test_a_writer_that_may_have_raced_lands_every_report_but_a_failed_batchs(idle_runner) -> None:
    runner = idle_runner(LINK)
    runner.tails = _Tails(raced=True)
    written, failed = _writes([_consumed(0, b"a")], [(b"sa", b"ra")]), _writes([_consumed(1, b"b")], [(b"sb", b"rb")])
    written.delivered(None, _report("eu.orders", b"a", 0, 7))
    failed.delivered(None, _report("eu.orders", b"b", 0, 8))
    failed.batch.errors.append((KafkaError(KafkaError._MSG_TIMED_OUT), _report("eu.orders", b"b", 0, -1)))
    suspect = (b"ss", b"rs", _report("eu.orders", b"s", 1, 3))
    runner._land([suspect], [written, failed])
    assert runner.tails.landed == [[landing_of(*suspect), landing_of(b"sa", b"ra", _report("eu.orders", b"a", 0, 7))]]
