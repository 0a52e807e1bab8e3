"""A private state namespace per test: tests share the regions' Redis, never each other's keys."""

import uuid
from collections.abc import Iterator

import pytest
import redis

from amity.regions import Region
from amity.state import StateSettings


def clear_namespace(client: redis.Redis, namespace: str) -> int:
    """Delete every key of `namespace` (and nothing else): how these tests wipe "their" Redis."""
    keys = list(client.scan_iter(match=f"{namespace}:*".encode(), count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start:start + 500])
    return len(keys)


@pytest.fixture
def clients(regions: dict[str, Region]) -> Iterator[dict[str, redis.Redis]]:
    opened = {name: redis.Redis.from_url(region.redis) for name, region in regions.items()}
    yield opened
    for client in opened.values():
        client.close()


@pytest.fixture
def state_settings(clients: dict[str, redis.Redis]) -> Iterator[StateSettings]:
    namespace = f"amity-test-{uuid.uuid4().hex[:10]}"
    yield StateSettings(namespace=namespace)
    for client in clients.values():
        clear_namespace(client, namespace)
