"""A link's thread outlives every failure: it reports itself unhealthy, waits and starts again."""

import pytest
from confluent_kafka import KafkaError, KafkaException
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.stats import MAX_PROBLEM_CHARS, LinkHealth


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
