"""/v1/regions against real Kafka and Redis."""

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from fastapi.testclient import TestClient

from amity.coordinator.errors import ChangedMeanwhileError
from amity.coordinator.keys import Keys
from amity.coordinator.store.regions import RegionStore
from amity.regions import Region
from tests.integration.coordinator.conftest import Anonymous, register


def test_register_checks_real_kafka_and_redis(api: TestClient, regions: dict[str, Region]) -> None:
    body = register(api, regions["us"])
    assert body["health"]["status"] == "up"
    assert body["health"]["kafka"]["ok"] and body["health"]["redis"]["ok"]
    assert api.get("/v1/regions/us").json()["bootstrap"] == regions["us"].bootstrap
    assert [r["name"] for r in api.get("/v1/regions").json()] == ["us"]


def test_unreachable_kafka_is_refused_with_an_actionable_message(api: TestClient, regions: dict[str, Region]) -> None:
    response = api.post("/v1/regions", json={"name": "gone", "bootstrap": "127.0.0.1:1", "redis": regions["us"].redis})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "Kafka at 127.0.0.1:1 did not answer" in detail and "check=false" in detail
    assert api.get("/v1/regions/gone").status_code == 404


def test_check_false_registers_an_unreachable_region(api: TestClient) -> None:
    response = api.post("/v1/regions", params={"check": "false"},
                        json={"name": "gone", "bootstrap": "127.0.0.1:1", "redis": "redis://127.0.0.1:1/0"})
    assert response.status_code == 201
    assert response.json()["health"]["status"] == "unknown"


def test_sasl_password_is_stored_but_never_returned(api: TestClient) -> None:
    security = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "amity",
                "sasl_password": "hunter2-secret"}
    response = api.post("/v1/regions", params={"check": "false"},
                        json={"name": "sec", "bootstrap": "127.0.0.1:1", "redis": "redis://:pw@127.0.0.1:1/0",
                              "security": security})
    assert response.status_code == 201
    for read in (response, api.get("/v1/regions/sec"), api.get("/v1/regions")):
        assert "hunter2-secret" not in read.text and ":pw@" not in read.text
    shown = api.get("/v1/regions/sec").json()
    assert shown["security"]["sasl_password_set"] is True
    assert shown["redis"] == "redis://:***@127.0.0.1:1/0"


def test_duplicate_region_is_a_conflict(api: TestClient, regions: dict[str, Region]) -> None:
    register(api, regions["us"])
    response = api.post("/v1/regions", json={"name": "us", "bootstrap": regions["us"].bootstrap})
    assert response.status_code == 409
    assert "already registered" in response.json()["detail"]


def test_update_rechecks_and_changes_the_region(api: TestClient, regions: dict[str, Region]) -> None:
    register(api, regions["us"])
    refused = api.patch("/v1/regions/us", json={"bootstrap": "127.0.0.1:1"})
    assert refused.status_code == 422
    assert api.get("/v1/regions/us").json()["bootstrap"] == regions["us"].bootstrap
    moved = api.patch("/v1/regions/us", json={"bootstrap": regions["eu"].bootstrap})
    assert moved.status_code == 200 and moved.json()["bootstrap"] == regions["eu"].bootstrap


def test_delete_refuses_a_region_links_use_unless_forced(api: TestClient, regions: dict[str, Region]) -> None:
    register(api, regions["us"])
    register(api, regions["eu"])
    assert api.post("/v1/links", json={"source": "us", "destination": "eu"}).status_code == 201
    refused = api.delete("/v1/regions/eu")
    assert refused.status_code == 409
    assert "us-to-eu" in refused.json()["detail"]
    forced = api.delete("/v1/regions/eu", params={"force": "true"})
    assert forced.json() == {"name": "eu", "links_deleted": ["us-to-eu"]}
    assert api.get("/v1/links").json() == []
    assert api.get("/v1/regions/eu").status_code == 404


def test_delete_refuses_a_region_a_conflict_rule_names(api: TestClient) -> None:
    for name in ("us", "ap"):
        assert api.post("/v1/regions", params={"check": "false"},
                        json={"name": name, "bootstrap": "127.0.0.1:1"}).status_code == 201
    rule = {"topic": "orders", "policy": "region-priority", "regions": ["ap", "us"]}
    assert api.put("/v1/rules", json=rule).status_code == 200
    refused = api.delete("/v1/regions/ap", params={"force": "true"})
    assert refused.status_code == 409
    assert "named by the conflict rules for ['orders']" in refused.json()["detail"]
    assert api.delete("/v1/rules", params={"topic": "orders"}).status_code == 200
    assert api.delete("/v1/regions/ap").status_code == 200


def test_mutations_need_the_token(anonymous: Anonymous, regions: dict[str, Region]) -> None:
    response = anonymous.post("/v1/regions", json={"name": "us", "bootstrap": regions["us"].bootstrap})
    assert response.status_code == 401
    assert "Authorization: Bearer" in response.json()["detail"]
    wrong = anonymous.post("/v1/regions", json={"name": "us", "bootstrap": regions["us"].bootstrap},
                           token="nope")
    assert wrong.status_code == 401
    assert anonymous.get("/v1/regions").status_code == 200


def test_health_monitor_keeps_region_status_current(api: TestClient) -> None:
    api.post("/v1/regions", params={"check": "false"},
             json={"name": "gone", "bootstrap": "127.0.0.1:1", "redis": "redis://127.0.0.1:1/0"})
    deadline = time.monotonic() + 15
    while api.get("/v1/regions/gone").json()["health"]["status"] == "unknown" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api.get("/v1/regions/gone").json()["health"]["status"] == "down"


def test_an_unchecked_update_forgets_the_old_health(api: TestClient, regions: dict[str, Region]) -> None:
    register(api, regions["us"])
    moved = api.patch("/v1/regions/us", params={"check": "false"}, json={"bootstrap": "127.0.0.1:1"})
    assert moved.json()["health"]["status"] == "unknown"
    assert api.get("/v1/regions/us").json()["health"]["status"] in ("unknown", "down")


def test_an_update_based_on_a_region_changed_meanwhile_is_refused(regions: dict[str, Region], namespace: str) -> None:
    async def race() -> None:
        client = aioredis.from_url(regions["us"].redis, decode_responses=True)
        store = RegionStore(client, Keys(namespace))
        try:
            first = Region(name="ap", bootstrap="127.0.0.1:1", redis="redis://127.0.0.1:1/0")
            await store.create(first, None)
            moved = first.model_copy(update={"bootstrap": "127.0.0.1:2"})
            await store.replace(moved, None, first)  # the other request, done while this one was checked
            with pytest.raises(ChangedMeanwhileError, match="changed by another request"):
                await store.replace(first.model_copy(update={"redis": "redis://127.0.0.1:3/0"}), None, first)
            assert (await store.get("ap")) == moved
        finally:
            await client.aclose()

    asyncio.run(race())
