"""Reading a region's partitions as origin streams: the exact part of every translation.

The index narrows a question down to at most K records; this reads them. It
reads committed records only (isolation read_committed), as the mirror does:
an aborted record never reaches another region, so it must not count as
processed or unprocessed anywhere.
"""

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from amity.failover.errors import RegionUnreachable
from amity.failover.kafka import client_config
from amity.failover.streams import Stream, origin_of
from amity.regions import READER_CONFIG, Region

Visit = Callable[[int, Stream, int], bool]


class PartitionReader:
    """Reads partitions of one region from a given offset; one consumer, reused, never committing."""

    def __init__(self, region: Region, timeout_s: float = 30.0, batch: int = 5000) -> None:
        self.region = region
        self.timeout_s = timeout_s
        self.batch = batch
        self._consumer = Consumer({
            **client_config(region, timeout_s),
            "group.id": f"amity-failover-reader-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # A scan ends at the first empty fetch (partition EOF): do not let the broker hold it for data.
            "fetch.wait.max.ms": 5,
            **READER_CONFIG,
        })

    def scan(self, topic: str, partition: int, start: int, visit: Visit, stop: int | None = None) -> int:
        """Feed the records from `start` (the log start if that is later) to `visit` in order.

        Stops when `visit` returns True, before offset `stop`, or at the end of
        the partition; returns the offset after the last record fed, or the
        end offset when the end was reached.
        """
        if stop is not None and start >= stop:
            return start
        consumer = self._consumer
        consumer.assign([TopicPartition(topic, partition, start)])
        local = (self.region.name, topic, partition)
        region = self.region.name
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                messages = consumer.consume(self.batch, timeout=0.02)
                if messages:
                    deadline = time.monotonic() + self.timeout_s
                elif time.monotonic() > deadline:
                    raise RegionUnreachable(f"region {region} did not return {topic}[{partition}] from offset {start} "
                                            f"within {self.timeout_s:.0f}s")
                for msg in messages:
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return msg.offset()
                        self._raise_unless_transient(error, topic, partition)
                        continue
                    offset = msg.offset()
                    if stop is not None and offset >= stop:
                        return stop
                    stream, origin_offset = origin_of(msg.headers(), region, local, offset)
                    if visit(offset, stream, origin_offset):
                        return offset + 1
        finally:
            consumer.unassign()

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """(log start offset, end offset) of a partition."""
        try:
            return self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=self.timeout_s)
        except KafkaException as exc:
            raise RegionUnreachable(f"region {self.region.name}: cannot read the offsets of {topic}[{partition}]: "
                                    f"{exc.args[0]}") from None

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> "PartitionReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raise_unless_transient(self, error: KafkaError, topic: str, partition: int) -> None:
        if error.fatal() or not error.retriable():
            raise RegionUnreachable(f"region {self.region.name}: reading {topic}[{partition}] failed: {error.str()}")
