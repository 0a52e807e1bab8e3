"""Topic discovery and creation for a link: new source topics appear in the destination in seconds.

Missing destination topics are created with the source's partition count and
the configs that decide what the topic keeps (cleanup policy, retention,
compaction). A partition count that grows at the source grows at the
destination. Destination topics always use CreateTime, so record timestamps
(and every timestamp-based policy and latency figure) survive the copy.
"""

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewPartitions, NewTopic, ResourceType

from amity.links import Link

log = logging.getLogger(__name__)

COPIED_CONFIGS = (
    "cleanup.policy", "retention.ms", "retention.bytes", "delete.retention.ms", "min.compaction.lag.ms",
    "max.compaction.lag.ms", "min.cleanable.dirty.ratio", "max.message.bytes", "segment.ms", "segment.bytes",
)
ADMIN_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """One replicated topic: its source name, destination name and partition counts."""

    source: str
    destination: str
    source_partitions: int
    destination_partitions: int
    max_record_bytes: int


class TopicSync:
    """Keeps the destination's topics in step with what the link selects in the source."""

    def __init__(self, link: Link, source: AdminClient, destination: AdminClient, producer_max_bytes: int) -> None:
        self.link = link
        self.source = source
        self.destination = destination
        self.producer_max_bytes = producer_max_bytes

    def sync(self) -> dict[str, TopicPlan]:
        """Discover, create and grow; returns the plan per source topic. Raises KafkaException if a cluster is down."""
        source_topics = self._partition_counts(self.source)
        selected = {t: n for t, n in source_topics.items() if self.link.selects(t)}
        destination_topics = self._partition_counts(self.destination)
        self._create_missing(selected, destination_topics)
        self._grow(selected, destination_topics)
        destination_topics = self._partition_counts(self.destination)
        limits = self._max_record_bytes([self.link.destination_topic(t) for t in selected])
        return {
            topic: TopicPlan(topic, self.link.destination_topic(topic), count,
                             destination_topics.get(self.link.destination_topic(topic), count),
                             limits.get(self.link.destination_topic(topic), self.producer_max_bytes))
            for topic, count in selected.items()
        }

    def ensure_internal(self, name: str, config: dict[str, str]) -> None:
        """Create one of the link's own topics (dead letters, stored offsets) in the destination if missing."""
        if name not in self._partition_counts(self.destination):
            self._create(self.destination, [NewTopic(name, 1, 1, config=config)])

    @staticmethod
    def _partition_counts(admin: AdminClient) -> dict[str, int]:
        metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    def _create_missing(self, selected: dict[str, int], existing: dict[str, int]) -> None:
        missing = [t for t in selected if self.link.destination_topic(t) not in existing]
        if not missing:
            return
        configs = self._copied_configs(missing)
        new = [NewTopic(self.link.destination_topic(t), selected[t], 1,
                        config={**configs.get(t, {}), "message.timestamp.type": "CreateTime"}) for t in missing]
        self._create(self.destination, new)
        for topic in missing:
            log.info("link %s: created %s in %s with %d partitions", self.link.name,
                     self.link.destination_topic(topic), self.link.destination, selected[topic])

    def _grow(self, selected: dict[str, int], existing: dict[str, int]) -> None:
        grow = [NewPartitions(self.link.destination_topic(t), n) for t, n in selected.items()
                if existing.get(self.link.destination_topic(t), n) < n]
        if not grow:
            return
        for future in self.destination.create_partitions(grow, operation_timeout=ADMIN_TIMEOUT_S).values():
            future.result(timeout=ADMIN_TIMEOUT_S)
        for spec in grow:
            log.info("link %s: grew %s to %d partitions", self.link.name, spec.topic, spec.new_total_count)

    def _copied_configs(self, topics: list[str]) -> dict[str, dict[str, str]]:
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
        configs = {}
        for resource, future in self.source.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_S).items():
            entries = future.result(timeout=ADMIN_TIMEOUT_S)
            configs[resource.name] = {k: e.value for k, e in entries.items()
                                      if k in COPIED_CONFIGS and not e.is_default and e.value is not None}
        return configs

    def _max_record_bytes(self, topics: list[str]) -> dict[str, int]:
        if not topics:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
        limits = {}
        for resource, future in self.destination.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_S).items():
            entry = future.result(timeout=ADMIN_TIMEOUT_S).get("max.message.bytes")
            topic_limit = int(entry.value) if entry is not None and entry.value else self.producer_max_bytes
            limits[resource.name] = min(topic_limit, self.producer_max_bytes)
        return limits

    @staticmethod
    def _create(admin: AdminClient, topics: list[NewTopic]) -> None:
        """Create and wait until the broker's metadata shows every new topic (describe and produce need it)."""
        for name, future in admin.create_topics(topics, operation_timeout=ADMIN_TIMEOUT_S).items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise
        wanted = {topic.topic for topic in topics}
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while not wanted <= set(TopicSync._partition_counts(admin)) and time.monotonic() < deadline:
            time.sleep(0.1)
