"""Source data and destination counts for the benchmark, with confluent-kafka.

Values are random upper-case letters, like ProducerPerformance's payload: no
run compresses better than another because of its data. Plain records are
spread round-robin over the partitions so every partition holds the same share;
records written through `amity.Producer` go where their key hashes to, as an
application's would.
"""

import random
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from amity.errors import AmityError
from amity.producer import Producer as StampingProducer
from amity.regions import Region
from amity.rules import ConflictRule, RuleSet
from amity.state import StateSettings

LETTERS = bytes(65 + i % 26 for i in range(256))
CHUNK_RECORDS = 10_000
ADMIN_TIMEOUT_S = 30.0

Progress = Callable[[int], None]


class BenchDataError(AmityError):
    """The benchmark could not write or read its data."""


def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    """Create the topics that do not exist yet, `partitions` each."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    existing = admin.list_topics(timeout=ADMIN_TIMEOUT_S).topics
    topics = [NewTopic(name, partitions, 1, config={"message.timestamp.type": "CreateTime"})
              for name in dict.fromkeys(names) if name not in existing]
    if not topics:
        return
    for name, future in admin.create_topics(topics, operation_timeout=ADMIN_TIMEOUT_S).items():
        try:
            future.result(timeout=ADMIN_TIMEOUT_S)
        except KafkaException as exc:
            raise BenchDataError(f"cannot create topic {name} on {bootstrap}: {exc.args[0]}") from None


def payloads(count: int, size: int, seed: int) -> list[bytes]:
    """`count` values of exactly `size` bytes."""
    rng = random.Random(seed)
    block = rng.randbytes(count * size).translate(LETTERS)
    return [block[i * size:(i + 1) * size] for i in range(count)]


def write_records(bootstrap: str, topic: str, records: int, size: int, partitions: int,
                  keys: int = 0, progress: Progress = lambda done: None) -> None:
    """Write `records` values of `size` bytes, spread evenly over the partitions; with `keys` > 0 each record gets
    one of that many keys, and each key one partition (`k<j>` in partition j mod `partitions`), as a keyed
    producer's partitioner does: a key's versions are in one partition, in the order they were written."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000, "log_level": 3})
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    written = 0
    while written < records:
        chunk = min(CHUNK_RECORDS, records - written)
        for i, value in enumerate(payloads(chunk, size, seed=written)):
            n = written + i
            key, partition = (f"k{n % keys}".encode(), n % keys % partitions) if keys else (None, n % partitions)
            _produce(producer, topic, value, key, partition, delivered)
        written += chunk
        producer.poll(0)
        progress(written)
    if producer.flush(120) != 0 or failures:
        raise BenchDataError(f"writing {records} records to {topic} on {bootstrap} failed: {failures[:3]}")


def write_stamped_records(regions: list[Region], topic: str, records: int, size: int, keys: int, policy: str,
                          progress: Progress = lambda done: None, settings: StateSettings | None = None) -> None:
    """Write `records` keyed values into `topic` in each region through `amity.Producer`, so each carries its stamp
    from its region's state and no mirror has to stamp it at its first hop.

    Each region writes keys of its own (`us-k0`, `eu-k0`, ...): written ahead of the mirror, versions of shared keys
    would all be decided before it starts, and every one but each key's last would arrive stale. So every record
    is applied in the other region, each through the resolver's whole path. The regions take turns, a chunk at a
    time, so neither finishes writing long before the other.
    """
    rules = RuleSet(rules=[ConflictRule(topic=topic, policy=policy)])
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    config = {"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4",
              "queue.buffering.max.messages": 1_000_000, "log_level": 3}
    producers = [StampingProducer(region, rules, config, settings=settings) for region in regions]
    try:
        written = 0
        while written < records:
            chunk = min(CHUNK_RECORDS, records - written)
            values = payloads(chunk, size, seed=written)
            for region, producer in zip(regions, producers):
                batch = [(f"{region.name}-k{(written + i) % keys}".encode(), value) for i, value in enumerate(values)]
                producer.produce_batch(topic, batch, on_delivery=delivered)
                producer.poll(0)
            written += chunk
            progress(written * len(producers))
    finally:
        remaining = sum(producer.flush(120) for producer in producers)
        for producer in producers:
            producer.tails.close()
    if remaining or failures:
        raise BenchDataError(f"writing {records} stamped records to {topic} in "
                             f"{', '.join(r.name for r in regions)} failed: {remaining} not acknowledged, "
                             f"{failures[:3]}")


def _produce(producer: Producer, topic: str, value: bytes, key: bytes | None, partition: int,
             delivered: Callable) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, partition=partition, on_delivery=delivered)
            return
        except BufferError:
            producer.poll(0.05)


class EndOffsets:
    """The summed end offsets (high watermarks) of some topics, one request per poll."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
        metadata = self.admin.list_topics(timeout=ADMIN_TIMEOUT_S)
        missing = [t for t in topics if t not in metadata.topics]
        if missing:
            raise BenchDataError(f"topics {missing} do not exist on {bootstrap}")
        self.request = {TopicPartition(t, p): OffsetSpec.latest() for t in topics for p in metadata.topics[t].partitions}

    def total(self, retry_s: float = 30.0) -> int:
        """The sum; retried while a partition has no leader yet (a topic created a moment ago)."""
        deadline = time.monotonic() + retry_s
        while True:
            try:
                futures = self.admin.list_offsets(self.request, request_timeout=10)
                return sum(future.result(timeout=10).offset for future in futures.values())
            except KafkaException:
                # librdkafka does not mark every leadership error retriable; all of them pass in seconds.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def _partition_ids(consumer: Consumer, topic: str, bootstrap: str, timeout_s: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is not None and metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() > deadline:
            raise BenchDataError(f"topic {topic} does not exist on {bootstrap} after {timeout_s:.0f}s")
        time.sleep(0.2)


def count_committed(bootstrap: str, topic: str, timeout_s: float = 300.0) -> int:
    """Records a read_committed consumer sees in `topic`, read to its current end (markers are not records)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-count-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "enable.partition.eof": True, "log_level": 3})
    try:
        partitions = [TopicPartition(topic, p, 0) for p in _partition_ids(consumer, topic, bootstrap)]
        consumer.assign(partitions)
        pending = {tp.partition for tp in partitions}
        count = 0
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise BenchDataError(f"could not read {topic} to its end in {timeout_s:.0f}s ({count} records)")
            for msg in consumer.consume(10_000, timeout=0.5):
                error = msg.error()
                if error is None:
                    count += 1
                elif error.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise BenchDataError(f"reading {topic}: {error}")
        return count
    finally:
        consumer.close()
