"""A partition's end offset, asked patiently.

Right after a topic is created (by the mirror in a destination, or the
offsets topic at a link's start) the broker may not yet know the partition's
leader, or the client not yet know the partition, and the offset query fails
with NOT_LEADER_FOR_PARTITION or its kin for a moment: a few topics in a
hundred on the local brokers. Those errors are retried until the timeout; any
other error is raised at once.
"""

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

LEADERSHIP_SETTLING = frozenset({KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                                 KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_PARTITION})


def end_offset(consumer: Consumer, tp: TopicPartition, timeout_s: float) -> int:
    """The partition's high watermark, retried while its leader is still being elected."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=max(0.1, deadline - time.monotonic()))[1]
        except KafkaException as error:
            if error.args[0].code() not in LEADERSHIP_SETTLING or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
