"""Session-wide fixtures: the real local regions, started once per test session."""

from collections.abc import Iterator

import pytest

from amity.regions import Region
from tests.support import cluster
from tests.support.kafka import unique_topic


@pytest.fixture(scope="session")
def regions() -> Iterator[dict[str, Region]]:
    """Three real regions (us, eu, ap): Kafka 4.3.1 KRaft + Redis each, on ports 24092.. and 24099.."""
    settings = cluster.test_settings()
    started = cluster.acquire(settings)
    yield started
    leftover = cluster.release(settings)
    assert not leftover, f"processes left running after the session: {leftover}"


@pytest.fixture
def topic() -> str:
    """A topic name no other test uses."""
    return unique_topic()
