"""The coordinator served by uvicorn in its own process, as `amity coordinator run` starts it."""

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from amity.mirror.plan import CoordinatorPlan
from amity.regions import Region
from amity.stats import StatsReport
from tests.integration.coordinator.conftest import AUTH, TOKEN, fresh_namespace
from tests.integration.coordinator.server import coordinator_process


@pytest.fixture(scope="module")
def url(regions: dict[str, Region], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One process for the module: its tests only read, or send requests it refuses."""
    with fresh_namespace(regions["us"].redis) as namespace:
        env = {"AMITY_REDIS_URL": regions["us"].redis, "AMITY_NAMESPACE": namespace,
               "AMITY_API_TOKEN": TOKEN, "AMITY_PROBE_TIMEOUT_S": "3", "AMITY_MAX_BODY_BYTES": "4096"}
        with coordinator_process(env, tmp_path_factory.mktemp("server") / "coordinator.log") as running:
            yield running


def test_health_readiness_metrics_and_openapi(url: str) -> None:
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{url}/readyz").json()
    assert ready["status"] == "ready" and ready["dependencies"]["redis"]["ok"]
    httpx.get(f"{url}/v1/regions")
    metrics = httpx.get(f"{url}/metrics").text
    assert 'amity_coordinator_requests_total{method="GET",route="/v1/regions",status="200"}' in metrics
    assert "/v1/workers/{worker_id}/heartbeat" in httpx.get(f"{url}/openapi.json").json()["paths"]
    assert httpx.get(f"{url}/docs").status_code == 200


def test_oversized_bodies_get_413(url: str) -> None:
    body = {"name": "us", "bootstrap": "127.0.0.1:9092", "redis": "redis://" + "x" * 5000}
    response = httpx.post(f"{url}/v1/regions", json=body, headers=AUTH)
    assert response.status_code == 413
    assert "larger than 4096 bytes" in response.json()["detail"]


def test_chunked_oversized_bodies_get_413(url: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "us", "bootstrap": "127.0.0.1:9092", "redis": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(f"{url}/v1/regions", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 413


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "the body is not valid JSON"),
    (b'{"name": "us"}', "body.bootstrap: required"),
    (b'{"name": "US!", "bootstrap": "x:1"}', "body.name"),
    (b'{"name": "us", "bootstrap": "nohost"}', "bootstrap server 'nohost' is not host:port"),
])
def test_bad_input_gets_an_actionable_422(url: str, body: bytes, expected: str) -> None:
    response = httpx.post(f"{url}/v1/regions", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert httpx.get(f"{url}/v1/regions").json() == []


def test_a_worker_refused_by_the_coordinator_logs_what_it_answered(url: str, caplog: pytest.LogCaptureFixture) -> None:
    plan = CoordinatorPlan(url, "not-the-token-0123456789")
    with caplog.at_level(logging.WARNING, logger="amity.mirror.plan"):
        assert plan.poll(StatsReport(run_id="run-1")) is None
    plan.close()
    assert "coordinator refused the worker's request (401: " in caplog.text, caplog.text
    assert "unreachable" not in caplog.text


def test_readiness_and_the_api_answer_503_when_redis_is_away(tmp_path: Path) -> None:
    env = {"AMITY_REDIS_URL": "redis://127.0.0.1:1/0", "AMITY_PROBE_TIMEOUT_S": "1"}
    with coordinator_process(env, tmp_path / "coordinator.log") as running:
        response = httpx.get(f"{running}/readyz", timeout=10)
        assert response.status_code == 503
        assert response.json()["dependencies"]["redis"]["ok"] is False
        assert httpx.get(f"{running}/healthz").status_code == 200
        regions = httpx.get(f"{running}/v1/regions", timeout=10)
        assert regions.status_code == 503 and regions.headers["retry-after"] == "5"
        assert "the coordinator's state store (Redis, AMITY_REDIS_URL) did not answer" in regions.json()["detail"]
