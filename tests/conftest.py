"""Session-wide fixtures: the real local regions, started once per test session."""

from collections.abc import Iterator

import pytest
from hypothesis import settings

from amity.regions import Region
from tests.support import cluster
from tests.support.kafka import unique_topic

# No per-example time limit: the properties are about results, and on a shared 2-core machine under load an example
# can take longer than hypothesis's default 200 ms without anything being wrong.
settings.register_profile("amity", deadline=None)
settings.load_profile("amity")


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
