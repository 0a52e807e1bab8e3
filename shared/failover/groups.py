"""Consumer groups and topics of one region, through the Kafka admin API.

Offsets are written with AlterConsumerGroupOffsets, which the broker accepts
only for a group without members: the same rule as MirrorMaker 2's
sync.group.offsets, enforced by Kafka itself, so a race with a consumer that
joins between our check and our commit fails safely instead of moving it.
"""

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from amity.failover.errors import GroupActive, RegionUnreachable
from amity.failover.kafka import client_config
from amity.regions import Region

_NO_OFFSET = -1001
_MEMBERSHIP_ERRORS = {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
                      KafkaError.FENCED_INSTANCE_ID}
_EMPTY_STATES = {"EMPTY", "DEAD", "UNKNOWN"}


class GroupAdmin:
    """Reads and writes consumer group offsets in one region; every call is bounded by `timeout_s`."""

    def __init__(self, region: Region, timeout_s: float = 10.0) -> None:
        self.region = region
        self.timeout_s = timeout_s
        self.admin = AdminClient(client_config(region, timeout_s))

    def reachable(self) -> bool:
        """True when the region's Kafka answers a metadata request in time."""
        try:
            metadata = self.admin.list_topics(timeout=self.timeout_s)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def partition_counts(self) -> dict[str, int]:
        """Partition count per topic."""
        metadata = self._call("list the topics", lambda: self.admin.list_topics(timeout=self.timeout_s))
        return {name: len(t.partitions) for name, t in metadata.topics.items() if t.error is None}

    def partitions(self, topic: str) -> int | None:
        """The topic's partition count; None when it does not exist."""
        metadata = self._call(f"describe topic {topic}", lambda: self.admin.list_topics(topic, timeout=self.timeout_s))
        found = metadata.topics.get(topic)
        return len(found.partitions) if found is not None and found.error is None else None

    def groups(self) -> list[str]:
        future = self.admin.list_consumer_groups(request_timeout=self.timeout_s)
        result = self._call("list consumer groups", lambda: future.result(timeout=self.timeout_s))
        return sorted(listing.group_id for listing in result.valid)

    def members(self, group: str) -> int:
        """How many members the group has now (0 for an empty or unknown group)."""
        future = self.admin.describe_consumer_groups([group], request_timeout=self.timeout_s)[group]
        description = self._call(f"describe group {group}", lambda: future.result(timeout=self.timeout_s))
        if description.state.name in _EMPTY_STATES:
            return 0
        return max(len(description.members), 1)

    def committed(self, group: str, topic: str | None = None, partitions: int = 0) -> dict[tuple[str, int], int]:
        """The group's committed offsets: on `topic`'s partitions when given, else on every topic it has any."""
        wanted = [TopicPartition(topic, p) for p in range(partitions)] if topic is not None else None
        request = ConsumerGroupTopicPartitions(group, wanted)
        future = self.admin.list_consumer_group_offsets([request], request_timeout=self.timeout_s)[group]
        result = self._call(f"read the offsets of group {group}", lambda: future.result(timeout=self.timeout_s))
        return {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions
                if tp.error is None and tp.offset != _NO_OFFSET}

    def commit(self, group: str, topic: str, offsets: dict[int, int]) -> None:
        """Write the group's offsets on `topic`; refused by the broker (GroupActive) if the group has members."""
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in sorted(offsets.items())])
        future = self.admin.alter_consumer_group_offsets([request], request_timeout=self.timeout_s)[group]
        result = self._call(f"commit offsets for group {group}", lambda: future.result(timeout=self.timeout_s))
        for tp in result.topic_partitions:
            if tp.error is None:
                continue
            if tp.error.code() in _MEMBERSHIP_ERRORS:
                raise GroupActive(f"group {group} has active members in {self.region.name}: stop its consumers there "
                                  "first (Kafka refuses offsets for a group with members)")
            raise RegionUnreachable(f"region {self.region.name} refused the offset of {topic}[{tp.partition}] "
                                    f"for group {group}: {tp.error.str()}")

    def _call(self, what: str, call):  # noqa: ANN001, ANN202 - a thunk over the admin client's futures
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0]
            detail = error.str() if isinstance(error, KafkaError) else str(error)
            raise RegionUnreachable(f"region {self.region.name}: cannot {what}: {detail}") from None
        except TimeoutError:
            raise RegionUnreachable(f"region {self.region.name}: cannot {what}: no answer within "
                                    f"{self.timeout_s:.0f}s") from None
