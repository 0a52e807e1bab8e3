"""Small Kafka helpers for tests: create topics, produce, read a topic to its end."""

import threading
import time
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from amity.watermarks import end_offset


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
    futures[name].result(timeout=30)


def topic_exists(bootstrap: str, name: str) -> bool:
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return name in metadata.topics


def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]], **conf: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5, **conf})
    errors: list[str] = []

    def on_delivery(err, _msg):  # noqa: ANN001 - confluent-kafka callback signature
        if err is not None:
            errors.append(str(err))

    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        producer.poll(0)
    if producer.flush(30) != 0 or errors:
        raise KafkaException(f"produce to {topic} failed: {errors[:3]} ({len(errors)} errors)")


def produce_in_background(bootstrap: str, topic: str, total: int, chunks: int = 12) -> threading.Thread:
    """Write `total` keyed records (values "0".."total-1") in `chunks` chunks 0.3 s apart, on a thread: a source
    that keeps writing while a test starts, stops or rebalances mirrors."""
    def run() -> None:
        per_chunk = total // chunks
        for chunk in range(chunks):
            produce(bootstrap, topic, [(f"k{n % 997}".encode(), f"{chunk * per_chunk + n}".encode())
                                       for n in range(per_chunk)])
            time.sleep(0.3)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed", timeout_s: float = 30.0) -> list:
    """Every record of `topic` from the beginning to the current end of each partition."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex}", "enable.auto.commit": False,
        "isolation.level": isolation, "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = [TopicPartition(topic, p, 0) for p in metadata.topics[topic].partitions]
        ends = {tp.partition: end_offset(consumer, tp, timeout_s) for tp in partitions}
        consumer.assign(partitions)
        return _drain(consumer, ends, timeout_s)
    finally:
        consumer.close()


def _drain(consumer: Consumer, ends: dict[int, int], timeout_s: float) -> list:
    """Consume until each partition's position passes its end offset (transaction markers included)."""
    records = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for msg in consumer.consume(1000, timeout=0.5):
            if msg.error():
                raise KafkaException(msg.error())
            records.append(msg)
        positions = consumer.position(consumer.assignment())
        if all(ends[tp.partition] == 0 or tp.offset >= ends[tp.partition] for tp in positions):
            return records
    raise TimeoutError(f"topic not read to its end within {timeout_s}s: {len(records)} records read")
