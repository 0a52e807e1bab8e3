"""Source positions stored in the destination cluster, for exactly-once mode.

A Kafka transaction can only span one cluster, so the source consumer's
offsets cannot join it. Instead each transaction also writes the next source
offset of its partition to a compacted topic in the destination
(`amity.<source>.offsets.internal`, like MirrorMaker 2's mm2-offsets): data and
position commit or abort together, and a worker taking a partition over seeks
the source consumer to the stored position.
"""

import time
import uuid

import msgpack
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from amity.watermarks import end_offset

TopicPartitionKey = tuple[str, int]
CONFIG = {"cleanup.policy": "compact", "min.insync.replicas": "1"}


def offsets_topic(source_region: str) -> str:
    return f"amity.{source_region}.offsets.internal"


def offset_key(topic: str, partition: int) -> bytes:
    return msgpack.packb([topic, partition])


class OffsetStore:
    """Reads and writes one source region's stored positions in the destination."""

    def __init__(self, destination_config: dict[str, str], topic: str) -> None:
        self.destination_config = destination_config
        self.topic = topic

    def write(self, producer: Producer, tp: TopicPartitionKey, next_offset: int) -> None:
        """Add the position to the producer's open transaction."""
        producer.produce(self.topic, key=offset_key(*tp), value=msgpack.packb(next_offset))

    def load(self, timeout_s: float = 30.0) -> dict[TopicPartitionKey, int]:
        """Every committed position, read from the start to the end of the (compacted) topic."""
        consumer = Consumer({
            **self.destination_config, "group.id": f"amity-offsets-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False, "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        })
        try:
            return self._read(consumer, timeout_s)
        finally:
            consumer.close()

    def _read(self, consumer: Consumer, timeout_s: float) -> dict[TopicPartitionKey, int]:
        tp = TopicPartition(self.topic, 0, 0)
        end = end_offset(consumer, tp, timeout_s)
        positions: dict[TopicPartitionKey, int] = {}
        if end == 0:
            return positions
        consumer.assign([tp])
        deadline = time.monotonic() + timeout_s
        while consumer.position([TopicPartition(self.topic, 0)])[0].offset < end:
            if time.monotonic() > deadline:
                raise KafkaException(f"stored offsets in {self.topic} not read to the end within {timeout_s}s")
            for msg in consumer.consume(1000, timeout=0.5):
                if msg.error() is None and msg.value() is not None:
                    topic, partition = msgpack.unpackb(msg.key())
                    positions[(topic, partition)] = msgpack.unpackb(msg.value())
        return positions
