"""end_offset answers for a topic created a moment ago, and gives up on a missing one at its timeout."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from amity.regions import Region
from amity.watermarks import end_offset


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": f"w-{uuid.uuid4().hex}"})


def test_end_offset_of_topics_just_created(regions: dict[str, Region]) -> None:
    """Asked straight after CreateTopics returns, a few topics in a hundred have no leader yet on these brokers."""
    bootstrap = regions["us"].bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ends = []
    for _ in range(60):
        topic = f"fresh-{uuid.uuid4().hex[:10]}"
        admin.create_topics([NewTopic(topic, 4, 1)])[topic].result(30)
        consumer = _consumer(bootstrap)
        try:
            ends += [end_offset(consumer, TopicPartition(topic, p), timeout_s=30) for p in range(4)]
        finally:
            consumer.close()
    assert ends == [0] * 240


def test_end_offset_gives_up_on_a_missing_topic_at_its_timeout(regions: dict[str, Region], topic: str) -> None:
    consumer = _consumer(regions["us"].bootstrap)
    try:
        started = time.monotonic()
        with pytest.raises(KafkaException) as raised:
            end_offset(consumer, TopicPartition(topic, 0), timeout_s=2)
        assert raised.value.args[0].code() in (KafkaError._UNKNOWN_PARTITION, KafkaError.UNKNOWN_TOPIC_OR_PART)
        assert 2 <= time.monotonic() - started < 15
    finally:
        consumer.close()
