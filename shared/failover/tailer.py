"""The index tailer: reads every selected topic of one region and keeps its offset index current.

Per record it finds the record's stream (one msgpack parse of the provenance
header, nothing for a local record) and raises that stream's running maximum;
every K records of a partition it writes a snapshot. Writes go to Redis once
per consumed batch, in one pipeline. A restarted tailer resumes at each
partition's latest snapshot, so it never re-reads more than K records a
partition.
"""

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import redis
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from amity.failover.index import OffsetIndex, Snapshot
from amity.failover.kafka import client_config
from amity.failover.streams import Frontier, Stream, mirrored_origin, provenance_value
from amity.regions import READER_CONFIG, Region

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Partition:
    local: Stream
    seen: Frontier
    snapshot_at: int
    next: int
    recorded: int = -1


class Tailer:
    """Indexes the topics of `region` that `selects` accepts, until stopped."""

    def __init__(self, region: Region, selects: Callable[[str], bool], index: OffsetIndex, every: int = 1000,
                 discovery_interval_s: float = 5.0, trim_interval_s: float = 60.0, batch: int = 10_000) -> None:
        self.region = region
        self.selects = selects
        self.index = index
        self.every = every
        self.discovery_interval_s = discovery_interval_s
        self.trim_interval_s = trim_interval_s
        self.batch = batch
        self.records = 0
        self._partitions: dict[tuple[str, int], _Partition] = {}
        self._topics: dict[str, int] = {}
        self._consumer: Consumer | None = None

    def run(self, stop: threading.Event, retry_max_s: float = 10.0) -> None:
        """Index until `stop` is set; a region that is down is waited for."""
        backoff = 0.5
        while not stop.is_set():
            try:
                self._setup()
                backoff = 0.5
                self._loop(stop)
            except (KafkaException, redis.RedisError) as exc:
                log.warning("tailer %s: %s; retrying in %.1fs", self.region.name, exc, backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, retry_max_s)
            finally:
                self._teardown()

    def _setup(self) -> None:
        self._partitions.clear()
        self._topics.clear()
        self._consumer = Consumer({
            **client_config(self.region, 10.0),
            "group.id": f"amity-failover-tailer-{uuid.uuid4().hex[:12]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 100,
            **READER_CONFIG,
        })

    def _teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _loop(self, stop: threading.Event) -> None:
        next_discovery = next_trim = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_discovery:
                self._discover()
                next_discovery = now + self.discovery_interval_s
            if now >= next_trim:
                self._trim(stop)
                next_trim = now + self.trim_interval_s
            if not self._partitions:
                stop.wait(min(self.discovery_interval_s, 1.0))
                continue
            messages = self._consumer.consume(self.batch, timeout=0.5)
            if messages:
                self._index(messages)

    def _index(self, messages: list) -> None:
        """The hot loop: a dict lookup, a header parse for a mirrored record, a comparison; Redis once a batch."""
        partitions, region, every = self._partitions, self.region.name, self.every
        snapshots: list[tuple[str, int, Snapshot]] = []
        for msg in messages:
            if msg.error() is not None:
                self._check(msg.error())
                continue
            key = (msg.topic(), msg.partition())
            state = partitions.get(key)
            if state is None:
                continue
            offset = msg.offset()
            if offset < state.next:
                state = self._restart(key[0], key[1], offset)
            if offset - state.snapshot_at >= every:
                snapshots.append((key[0], key[1], Snapshot(offset, dict(state.seen))))
                state.snapshot_at = offset
            headers = msg.headers()
            raw = provenance_value(headers) if headers else None
            found = mirrored_origin(raw, region) if raw is not None else None
            if found is None:
                state.seen[state.local] = offset
            else:
                stream, origin_offset = found
                if state.seen.get(stream, -1) < origin_offset:
                    state.seen[stream] = origin_offset
            state.next = offset + 1
        self.records += len(messages)
        self._flush(snapshots)

    def _flush(self, snapshots: list[tuple[str, int, Snapshot]]) -> None:
        """Write the batch's snapshots and how far each partition got, in one pipeline."""
        moved: dict[str, dict[int, int]] = {}
        for (topic, partition), state in self._partitions.items():
            if state.next != state.recorded:
                moved.setdefault(topic, {})[partition] = state.next
                state.recorded = state.next
        if not snapshots and not moved:
            return
        with self.index.redis.pipeline(transaction=False) as pipe:
            for topic, partition, snapshot in snapshots:
                self.index.add(pipe, topic, partition, snapshot)
            for topic, positions in moved.items():
                self.index.record_progress(pipe, topic, positions)
            pipe.execute()

    def _restart(self, topic: str, partition: int, offset: int) -> _Partition:
        """The partition's offsets went backwards: the topic was recreated or truncated, so its index is void."""
        log.warning("tailer %s: %s[%d] restarted at offset %d; rebuilding its index", self.region.name, topic,
                    partition, offset)
        self.index.drop_partition(topic, partition)
        return self._start_partition(topic, partition, offset)

    def _discover(self) -> None:
        metadata = self._consumer.list_topics(timeout=10)
        wanted = {name: len(t.partitions) for name, t in metadata.topics.items()
                  if t.error is None and self.selects(name)}
        added = []
        for topic, count in wanted.items():
            for partition in range(self._topics.get(topic, 0), count):
                added.append(self._open(topic, partition))
        gone = [topic for topic in self._topics if topic not in wanted]
        for topic in gone:
            self._close(topic)
        self._topics = {**{t: n for t, n in self._topics.items() if t in wanted}, **wanted}
        if added:
            self._consumer.incremental_assign(added)
            self._flush([])
            log.info("tailer %s: indexing %d more partitions", self.region.name, len(added))

    def _open(self, topic: str, partition: int) -> TopicPartition:
        """Resume at the partition's latest snapshot, or read it from its log start."""
        latest = self.index.latest(topic, partition)
        if latest is None:
            self._start_partition(topic, partition, 0)
            return TopicPartition(topic, partition, OFFSET_BEGINNING)
        state = _Partition((self.region.name, topic, partition), dict(latest.seen), latest.offset, latest.offset)
        self._partitions[(topic, partition)] = state
        return TopicPartition(topic, partition, state.next)

    def _start_partition(self, topic: str, partition: int, offset: int) -> _Partition:
        """A partition indexed from scratch: its first record gets a snapshot of nothing seen."""
        state = _Partition((self.region.name, topic, partition), {}, -self.every - 1, offset)
        self._partitions[(topic, partition)] = state
        return state

    def _close(self, topic: str) -> None:
        """A topic that was deleted: its index describes offsets that no longer exist."""
        count = self._topics[topic]
        self._consumer.incremental_unassign([TopicPartition(topic, p) for p in range(count)])
        for partition in range(count):
            self._partitions.pop((topic, partition), None)
        self.index.drop_topic(topic, count)
        log.info("tailer %s: %s is gone; dropped its index", self.region.name, topic)

    def _trim(self, stop: threading.Event) -> None:
        for topic, partition in list(self._partitions):
            if stop.is_set():
                return
            try:
                low, _high = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            except KafkaException as exc:
                log.debug("tailer %s: no log start for %s[%d]: %s", self.region.name, topic, partition, exc)
                continue
            if low > 0:
                self.index.trim(topic, partition, low)

    def _check(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal() or not error.retriable():
            raise KafkaException(error)
        log.debug("tailer %s: %s", self.region.name, error)
