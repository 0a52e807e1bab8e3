"""The offset index on real Kafka and Redis: snapshots are exact, restarts resume, trimming bounds it.

Mirrored records are written here with the headers the mirror writes
(`encode_first_hop`), so the tailer sees local and mirrored streams
interleaved exactly as in a region with links.
"""

import random
import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from amity.failover.index import OffsetIndex
from amity.failover.positions import RegionPositions
from amity.failover.reading import PartitionReader
from amity.failover.streams import Frontier, advance
from amity.failover.tailer import Tailer
from amity.headers import PROVENANCE_HEADER, encode_first_hop
from amity.regions import Region
from tests.support.kafka import create_topic
from tests.support.mirror import wait_for

EVERY = 50


def write(region: Region, topic: str, partitions: int, count: int, seed: int) -> list[list[tuple]]:
    """`count` records spread over partitions: local ones and copies of two other regions' streams, shuffled.

    Returns, per partition, the (stream, origin offset) of each record in offset order.
    """
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": region.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    written: list[list[tuple]] = [[] for _ in range(partitions)]
    origin_next: dict[tuple, int] = {}
    for _ in range(count):
        partition = rng.randrange(partitions)
        origin = rng.choice([region.name, "ap", "sa"])
        if origin == region.name:
            stream = (region.name, topic, partition)
            headers = None
            offset = len(written[partition])
        else:
            stream = (origin, topic, partition)
            offset = origin_next.get(stream, 0)
            origin_next[stream] = offset + 1
            headers = [(PROVENANCE_HEADER, encode_first_hop(origin, topic, partition, offset, 1, region.name))]
        producer.produce(topic, b"v", partition=partition, headers=headers)
        written[partition].append((stream, offset))
    assert producer.flush(30) == 0
    return written


def running(records: list[tuple], upto: int) -> Frontier:
    seen: Frontier = {}
    for stream, offset in records[:upto]:
        advance(seen, stream, offset)
    return seen


@pytest.fixture
def client(regions: dict[str, Region]) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(regions["us"].redis)
    yield connection
    connection.close()


@pytest.fixture
def tail(regions: dict[str, Region], client: redis.Redis) -> Iterator:
    """Start tailers on us for one topic; every one started is stopped at the end."""
    running_tailers: list[tuple[threading.Event, threading.Thread]] = []

    def start(topic: str) -> Tailer:
        tailer = Tailer(regions["us"], lambda name: name == topic, OffsetIndex(client), every=EVERY,
                        discovery_interval_s=0.5, trim_interval_s=0.5)
        stop = threading.Event()
        thread = threading.Thread(target=tailer.run, args=(stop,), daemon=True)
        thread.start()
        running_tailers.append((stop, thread))
        return tailer

    yield start
    for stop, thread in running_tailers:
        stop.set()
        thread.join(30)


def indexed_to(index: OffsetIndex, topic: str, ends: dict[int, int]) -> bool:
    return index.progress(topic) == ends


def test_snapshots_hold_the_running_frontier_every_k_records(regions, client, tail, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=2)
    written = write(us, topic, 2, 700, seed=1)
    index = OffsetIndex(client)
    tail(topic)
    wait_for(lambda: indexed_to(index, topic, {p: len(r) for p, r in enumerate(written)}), message="indexed")
    for partition, records in enumerate(written):
        offsets = [s.offset for s in _all(index, topic, partition)]
        assert offsets == list(range(0, len(records), EVERY))
        for snapshot in _all(index, topic, partition):
            assert snapshot.seen == running(records, snapshot.offset)


def test_translation_on_real_topics_matches_the_records(regions, client, tail, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=2)
    written = write(us, topic, 2, 600, seed=2)
    index = OffsetIndex(client)
    tail(topic)
    wait_for(lambda: indexed_to(index, topic, {p: len(r) for p, r in enumerate(written)}), message="indexed")
    rng = random.Random(3)
    with PartitionReader(us) as reader:
        positions = RegionPositions(index, reader)
        for _ in range(5):
            committed = {p: rng.randrange(len(records) + 1) for p, records in enumerate(written)}
            for p, records in enumerate(written):
                assert positions.cut(topic, p, committed[p]).before == running(records, committed[p])
            processed = positions.progress(topic, committed, 2).processed
            for p, records in enumerate(written):
                resume = positions.resume(topic, p, processed)
                first = next((i for i, (s, o) in enumerate(records) if o > processed.get(s, -1)), len(records))
                assert resume.offset == first
                assert resume.redelivered == sum(1 for s, o in records[first:] if o <= processed.get(s, -1))


def test_a_restarted_tailer_resumes_from_its_latest_snapshot(regions, client, tail, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=1)
    index = OffsetIndex(client)
    first = write(us, topic, 1, 330, seed=4)[0]
    tail(topic)
    wait_for(lambda: indexed_to(index, topic, {0: 330}), message="first part indexed")
    second = tail(topic)
    wait_for(lambda: second.records > 0, message="second tailer reading")
    assert second.records == 330 - 300
    more = write(us, topic, 1, 100, seed=5)[0]
    wait_for(lambda: indexed_to(index, topic, {0: 430}), message="second part indexed")
    records = first + [(s, o + 330 if s[0] == "us" else o) for s, o in more]
    assert [s.offset for s in _all(index, topic, 0)] == list(range(0, 430, EVERY))
    assert index.latest(topic, 0).seen == running(records, 400)


def test_snapshots_below_the_log_start_are_trimmed_but_one(regions, client, tail, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=1)
    write(us, topic, 1, 500, seed=6)
    index = OffsetIndex(client)
    tail(topic)
    wait_for(lambda: indexed_to(index, topic, {0: 500}), message="indexed")
    admin = AdminClient({"bootstrap.servers": us.bootstrap})
    admin.delete_records([TopicPartition(topic, 0, 275)])[TopicPartition(topic, 0, 275)].result(30)
    wait_for(lambda: [s.offset for s in _all(index, topic, 0)] == [250, 300, 350, 400, 450], message="trimmed")


def test_a_deleted_topic_loses_its_index(regions, client, tail) -> None:
    us = regions["us"]
    topic = f"gone-{uuid.uuid4().hex[:8]}"
    create_topic(us.bootstrap, topic, partitions=1)
    write(us, topic, 1, 120, seed=7)
    index = OffsetIndex(client)
    tail(topic)
    wait_for(lambda: indexed_to(index, topic, {0: 120}), message="indexed")
    admin = AdminClient({"bootstrap.servers": us.bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    wait_for(lambda: index.progress(topic) == {} and index.snapshot_count(topic, 0) == 0, message="index dropped")


def _all(index: OffsetIndex, topic: str, partition: int) -> list:
    from amity.failover.index import Snapshot, snapshots_key

    return [Snapshot.unpack(raw) for raw in index.redis.zrange(snapshots_key(topic, partition), 0, -1)]
