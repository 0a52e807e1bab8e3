"""A link's writes of resolved records keep their delivery reports for landing once acknowledged, and every write
reports its delivery.

The producer is librdkafka's own, over its in-process mock cluster (`test.mock.num.brokers`): real
acknowledgements and offsets, no server.
"""

from confluent_kafka import KafkaError, Message, Producer

from amity.links import Link
from amity.mirror.acks import Batch
from amity.mirror.link import _landed
from amity.tails import Landing, landing_of

LINK = Link(source="us", destination="eu")


def _consumed(offset: int, key: bytes) -> Message:
    return Message(topic="orders", partition=0, offset=offset, key=key, value=b"v%d" % offset,
                   timestamp=(1, 1_700_000_000_000 + offset))


def test_an_acknowledged_resolved_record_is_reported_and_kept_with_its_version_for_landing() -> None:
    reports, landings = [], []
    delivered = Message(topic="orders", partition=2, offset=41, key=b"k")
    _landed(lambda err, msg: reports.append((err, msg)), landings.append, b"state", b"rank", None, delivered)
    assert reports == [(None, delivered)]
    assert landings == [(b"state", b"rank", delivered)]
    assert landing_of(*landings[0]) == Landing(b"state", b"rank", b"k", "orders", 2, 41), "it lands where written"


def test_a_failed_write_is_reported_and_does_not_land() -> None:
    reports, landings = [], []
    error = KafkaError(KafkaError._MSG_TIMED_OUT)
    failed = Message(topic="orders", partition=2, offset=-1, key=b"k")
    _landed(lambda err, msg: reports.append(err), landings.append, b"state", b"rank", error, failed)
    assert reports == [error]
    assert landings == []


def test_without_a_delivery_callback_an_acknowledged_record_still_lands() -> None:
    landings = []
    delivered = Message(topic="orders", partition=0, offset=7, key=b"k")
    _landed(None, landings.append, b"state", b"rank", None, delivered)
    assert [landing_of(*report) for report in landings] == [Landing(b"state", b"rank", b"k", "orders", 0, 7)]


def test_produced_records_land_where_the_cluster_put_them_and_every_one_is_reported(idle_runner) -> None:
    runner = idle_runner(LINK)
    producer = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    batch, landings = Batch({}), []
    forward = [(_consumed(i, b"k%d" % i), [("amity-prov", b"h%d" % i)]) for i in range(6)]
    versions = [None if i % 3 == 0 else (b"state%d" % i, b"rank%d" % i) for i in range(6)]
    runner._produce_all(producer, forward, batch.delivered, versions, landings)
    batch.pending += len(forward)
    assert producer.flush(30) == 0
    assert batch.pending == 0 and batch.errors == []
    landings = [landing_of(*report) for report in landings]
    # partitions are the partitioner's (no topic plan): reports come in order within each, not across them
    assert sorted((landing.state_key, landing.rank, landing.key, landing.topic) for landing in landings) == [
        (b"state%d" % i, b"rank%d" % i, b"k%d" % i, "orders") for i in (1, 2, 4, 5)]
    assert all(landing.offset >= 0 and landing.partition >= 0 for landing in landings)
    assert len({(landing.partition, landing.offset) for landing in landings}) == 4
