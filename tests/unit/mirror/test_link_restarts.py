"""A link's thread outlives every failure: it reports itself unhealthy, waits and starts again, and is healthy again
only once it caught up."""

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.stats import MAX_PROBLEM_CHARS, LinkHealth
from tests.unit.mirror.stubs import StubMessage


@pytest.mark.parametrize(("failure", "reported"), [
    (KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down")), "broker down (_TRANSPORT)"),
    (KafkaException("no error object"), "no error object"),
    (RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), "Connection refused"),
    (RedisTimeoutError("Timeout reading from socket"), "Timeout reading from socket"),
    (TimeoutError(), "TimeoutError"),
    (RecursionError("maximum recursion depth exceeded"), "unexpected error: maximum recursion depth exceeded"),
])
def test_a_failure_restarts_the_link_and_is_reported(idle_runner, monkeypatch, failure: Exception,
                                                     reported: str) -> None:
    runner = idle_runner(settings=MirrorSettings(retry_backoff_max_s=0.01))
    failures, health, setups = [failure, failure], [], []

    def loop() -> None:
        if failures:
            raise failures.pop()
        runner.stop()

    monkeypatch.setattr(runner, "_discover", lambda: None)
    monkeypatch.setattr(runner, "_setup", lambda: setups.append(1))
    monkeypatch.setattr(runner, "_loop", loop)
    monkeypatch.setattr(runner.stats, "healthy", lambda ok, reason: health.append((ok, reason)))
    runner.run()
    assert len(setups) == 3
    assert len(health) == 2
    assert all(not ok and reported in reason for ok, reason in health), health


def test_a_problem_longer_than_a_heartbeat_takes_is_cut() -> None:
    stats = LinkStats("us-to-eu")
    stats.healthy(False, "x" * (MAX_PROBLEM_CHARS + 50))
    health = stats.health()
    assert (health.healthy, len(health.problem), health.problem[-1]) == (False, MAX_PROBLEM_CHARS, "…")
    stats.healthy(True, "")
    assert stats.health() == LinkHealth(link="us-to-eu", healthy=True, problem="")


class RewindingConsumer:
    """What a rewind asks of the consumer: its assignment, the committed positions, and seeks."""

    def __init__(self, partitions: list[int], committed: int) -> None:
        self.partitions, self.position, self.seeks = partitions, committed, []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("orders", p) for p in self.partitions]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.position) for tp in partitions]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class FlushedProducer:
    def flush(self, timeout: float) -> int:
        return 0


def test_a_rewound_link_is_healthy_again_only_once_it_read_every_rewound_partition_to_its_end(idle_runner) -> None:
    """A write refused for good rewinds the link to its committed offsets. Right after, nothing is in flight and the
    consumer was at the end of both partitions before: health must still wait for them to be read again, or a
    link that failed would report itself healthy with the rewound records not yet written."""
    runner = idle_runner()
    runner.consumer, runner.producer = RewindingConsumer([0, 1], committed=10), FlushedProducer()
    runner._subscribed, runner._unread = ["orders"], set()  # both partitions read to their end before the failure
    runner.stats.healthy(False, "eu has acknowledged nothing for 5s")
    refused = (KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), StubMessage(partition_=1, offset_=12))
    end_of = {p: StubMessage(partition_=p, error_=KafkaError(KafkaError._PARTITION_EOF)) for p in (0, 1)}

    runner._recover_from([refused])
    assert runner.consumer.seeks == [("orders", 0, 10), ("orders", 1, 10)]
    runner._watch_progress(False)
    assert not runner.stats.is_healthy, "healthy right after the rewind, before anything was read again"
    runner._without_errors([end_of[0]])
    runner._watch_progress(False)
    assert not runner.stats.is_healthy, "healthy with partition 1 not read to its end again"
    runner._without_errors([end_of[1]])
    runner._watch_progress(False)
    assert runner.stats.is_healthy
