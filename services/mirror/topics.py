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

from amity.errors import AmityError, one_line
from amity.links import Link

log = logging.getLogger(__name__)

COPIED_CONFIGS = (
    "cleanup.policy", "retention.ms", "retention.bytes", "delete.retention.ms", "min.compaction.lag.ms",
    "max.compaction.lag.ms", "min.cleanable.dirty.ratio", "max.message.bytes", "segment.ms", "segment.bytes",
)
ADMIN_TIMEOUT_S = 15.0


class TopicRefused(AmityError):
    """The destination refused for good to create one of the link's own topics (a name it does not take, a
    policy, an ACL): retrying cannot help until someone changes the name or the cluster."""


class ClusterUnavailable(AmityError):
    """A region's Kafka did not answer the link's metadata request: down, cut off, or slower than ADMIN_TIMEOUT_S.

    Says which region, which the client's own error does not: a link talks to two.
    """

    def __init__(self, region: str, exc: KafkaException) -> None:
        super().__init__(f"Kafka of {region} did not answer: {one_line(exc)}")


@dataclass(frozen=True, slots=True)
class TopicPlan:
    """One replicated topic: its source name, destination name and partition counts."""

    source: str
    destination: str
    source_partitions: int
    destination_partitions: int
    max_record_bytes: int
    compacted: bool = False  # the destination topic's cleanup.policy compacts: it takes only keyed records
    # How far before and after the broker's clock a record's CreateTime may be (message.timestamp.before.max.ms,
    # .after.max.ms) for the destination topic to take it; None when it sets its own time (LogAppendTime).
    timestamp_window: tuple[int, int] | None = None


class TopicSync:
    """Keeps the destination's topics in step with what the link selects in the source."""

    def __init__(self, link: Link, source: AdminClient, destination: AdminClient, producer_max_bytes: int) -> None:
        self.link = link
        self.source = source
        self.destination = destination
        self.producer_max_bytes = producer_max_bytes
        self._reported: dict[str, str] = {}  # source topic -> why the destination refused it, logged once

    def sync(self) -> dict[str, TopicPlan]:
        """Discover, create and grow; returns the plan per source topic. Raises KafkaException if a cluster is down.

        A topic the destination refuses to create for good (its name too long for it, colliding with another
        topic's, a create policy) is left out of the plan and logged, so that it alone waits in the source
        and every other topic of the link flows on.
        """
        source_topics = self._partition_counts(self.source)
        selected = {t: n for t, n in source_topics.items() if self.link.selects(t)}
        destination_topics = self._partition_counts(self.destination)
        refused = self._create_missing(selected, destination_topics)
        selected = {t: n for t, n in selected.items() if t not in refused}
        self._grow(selected, destination_topics)
        destination_topics = self._partition_counts(self.destination)
        limits = self._destination_limits([self.link.destination_topic(t) for t in selected])
        return {
            topic: TopicPlan(topic, self.link.destination_topic(topic), count,
                             destination_topics.get(self.link.destination_topic(topic), count),
                             *limits.get(self.link.destination_topic(topic), (self.producer_max_bytes, False, None)))
            for topic, count in selected.items()
        }

    def ensure_internal(self, name: str, config: dict[str, str]) -> None:
        """Create one of the link's own topics (dead letters, stored offsets) in the destination if missing."""
        if name not in self._partition_counts(self.destination):
            refused = self._create(self.destination, [NewTopic(name, 1, 1, config=config)])
            if refused:
                raise TopicRefused(f"link {self.link.name}: {self.link.destination} refused to create topic "
                                   f"{name!r}: {refused[name]}")

    def _partition_counts(self, admin: AdminClient) -> dict[str, int]:
        try:
            return _partition_counts(admin)
        except KafkaException as exc:
            raise ClusterUnavailable(self.link.source if admin is self.source else self.link.destination,
                                     exc) from None

    def _create_missing(self, selected: dict[str, int], existing: dict[str, int]) -> dict[str, str]:
        """Create the selected topics the destination lacks; the source topics it refused, with its reason."""
        missing = [t for t in selected if self.link.destination_topic(t) not in existing]
        if not missing:
            return {}
        configs = self._copied_configs(missing)
        new = [NewTopic(self.link.destination_topic(t), selected[t], 1,
                        config={**configs.get(t, {}), "message.timestamp.type": "CreateTime"}) for t in missing]
        refused_names = self._create(self.destination, new)
        refused = {}
        for topic in missing:
            name = self.link.destination_topic(topic)
            if name in refused_names:
                refused[topic] = refused_names[name]
            else:
                log.info("link %s: created %s in %s with %d partitions", self.link.name, name,
                         self.link.destination, selected[topic])
        self._report(refused)
        return refused

    def _report(self, refused: dict[str, str]) -> None:
        for topic, reason in refused.items():
            if self._reported.get(topic) != reason:
                log.error("link %s: %s refused to create %s, so %s is not replicated (its records wait in %s): %s",
                          self.link.name, self.link.destination, self.link.destination_topic(topic), topic,
                          self.link.source, reason)
        self._reported = dict(refused)

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

    def _destination_limits(self, topics: list[str]) -> dict[str, tuple[int, bool, tuple[int, int] | None]]:
        """Per destination topic: the largest record it takes, whether it is compacted (keyed records only), and
        the window around its broker's clock a record's timestamp must fall in.

        A record the destination refuses for good would be retried forever, so the router dead-letters it first.
        """
        if not topics:
            return {}
        resources = [ConfigResource(ResourceType.TOPIC, t) for t in topics]
        limits = {}
        for resource, future in self.destination.describe_configs(resources, request_timeout=ADMIN_TIMEOUT_S).items():
            entries = future.result(timeout=ADMIN_TIMEOUT_S)
            size, policy = entries.get("max.message.bytes"), entries.get("cleanup.policy")
            topic_limit = int(size.value) if size is not None and size.value else self.producer_max_bytes
            compacted = policy is not None and "compact" in (policy.value or "")
            limits[resource.name] = (min(topic_limit, self.producer_max_bytes), compacted, _timestamp_window(entries))
        return limits

    @staticmethod
    def _create(admin: AdminClient, topics: list[NewTopic]) -> dict[str, str]:
        """Create and wait until the broker's metadata shows every new topic (describe and produce need it).

        Returns the topics the broker refused for good, with its reason; raises on an error worth retrying.
        """
        refused = {}
        for name, future in admin.create_topics(topics, operation_timeout=ADMIN_TIMEOUT_S).items():
            try:
                future.result(timeout=ADMIN_TIMEOUT_S)
            except KafkaException as exc:
                error = exc.args[0]
                if error.name() == "TOPIC_ALREADY_EXISTS":
                    continue
                if error.retriable():
                    raise
                refused[name] = f"{error.name()}: {error.str()}"
        wanted = {topic.topic for topic in topics} - set(refused)
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while not wanted <= set(_partition_counts(admin)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return refused


def _partition_counts(admin: AdminClient) -> dict[str, int]:
    metadata = admin.list_topics(timeout=ADMIN_TIMEOUT_S)
    return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}


def _timestamp_window(entries: dict) -> tuple[int, int] | None:
    """(before, after) in ms from a topic's configs; None for LogAppendTime, where the broker sets the time."""
    kind = entries.get("message.timestamp.type")
    if kind is not None and kind.value == "LogAppendTime":
        return None
    return _ms(entries, "message.timestamp.before.max.ms"), _ms(entries, "message.timestamp.after.max.ms")


def _ms(entries: dict, name: str) -> int:
    entry = entries.get(name)
    return int(entry.value) if entry is not None and entry.value else 2**63 - 1  # unset: Kafka's Long.MAX_VALUE
