"""A coordinator app on the us region's real Redis, under a key namespace of its own per test."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from pydantic import SecretStr

from amity.coordinator.app import create_app
from amity.coordinator.settings import CoordinatorSettings
from amity.regions import Region

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@contextmanager
def fresh_namespace(redis_url: str) -> Iterator[str]:
    """A key namespace nobody else uses; its keys are deleted afterwards (never FLUSHALL: Redis is shared)."""
    name = f"amity:test:{uuid.uuid4().hex[:12]}:"
    try:
        yield name
    finally:
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=f"{name}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def namespace(regions: dict[str, Region]) -> Iterator[str]:
    with fresh_namespace(regions["us"].redis) as name:
        yield name


@pytest.fixture
def settings(regions: dict[str, Region], namespace: str) -> CoordinatorSettings:
    return CoordinatorSettings(redis_url=regions["us"].redis, namespace=namespace, api_token=SecretStr(TOKEN),
                               probe_timeout_s=3, health_interval_s=1, heartbeat_interval_s=0.5,
                               worker_timeout_s=2)


@pytest.fixture
def api(settings: CoordinatorSettings) -> Iterator[TestClient]:
    """The app with its lifespan running; requests carry the API token."""
    with TestClient(create_app(settings), headers=AUTH) as client:
        yield client


class Anonymous:
    """Requests to the same running app without the token (or with another one)."""

    def __init__(self, api: TestClient) -> None:
        self._api = api

    def request(self, method: str, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        request = self._api.build_request(method, url, **kwargs)
        del request.headers["Authorization"]
        if token is not None:
            request.headers["Authorization"] = f"Bearer {token}"
        return self._api.send(request)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@pytest.fixture
def anonymous(api: TestClient) -> Anonymous:
    return Anonymous(api)


def register(api: TestClient, region: Region, **params: str) -> dict:
    body = {"name": region.name, "bootstrap": region.bootstrap, "redis": region.redis}
    response = api.post("/v1/regions", json=body, params=params)
    assert response.status_code == 201, response.text
    return response.json()
