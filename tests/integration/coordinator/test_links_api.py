"""/v1/links: validation, shortcuts, pause/resume and dry runs on real regions."""

import pytest
from fastapi.testclient import TestClient

from amity.regions import Region
from tests.integration.coordinator.conftest import register
from tests.support.kafka import create_topic, unique_topic


@pytest.fixture
def three(api: TestClient, regions: dict[str, Region]) -> TestClient:
    for region in regions.values():
        register(api, region)
    return api


def test_create_show_list_and_delete(three: TestClient) -> None:
    created = three.post("/v1/links", json={"source": "us", "destination": "eu", "include": ["orders.*"]})
    assert created.status_code == 201
    assert created.json()["id"] == "us-to-eu" and created.json()["updated_by"] == "operator"
    assert three.get("/v1/links/us-to-eu").json()["include"] == ["orders.*"]
    assert [link["id"] for link in three.get("/v1/links").json()] == ["us-to-eu"]
    assert three.delete("/v1/links/us-to-eu").status_code == 204
    assert three.get("/v1/links/us-to-eu").status_code == 404


@pytest.mark.parametrize(("body", "expected"), [
    ({"source": "us", "destination": "mars"}, "not registered: ['mars']"),
    ({"source": "us", "destination": "us"}, "cannot replicate region 'us' into itself"),
    ({"source": "us", "destination": "eu", "include": ["orders("]}, "is not a valid regular expression"),
    ({"source": "us", "destination": "eu", "include": ["(?i)orders"]}, "give flags scoped, as (?i:orders)"),
    ({"source": "us", "destination": "eu", "exclude": ["(?P<a>x)", "(?P<a>y)"]}, "cannot be matched together"),
    ({"source": "us", "destination": "eu", "colour": "red"}, "body.colour: unknown field"),
])
def test_invalid_links_are_refused_with_the_reason(three: TestClient, body: dict, expected: str) -> None:
    response = three.post("/v1/links", json=body)
    assert response.status_code == 422
    assert expected in response.json()["detail"]
    assert three.get("/v1/links").json() == []


def test_a_second_link_writing_the_same_topics_is_refused(three: TestClient) -> None:
    assert three.post("/v1/links", json={"source": "us", "destination": "eu"}).status_code == 201
    again = three.post("/v1/links", json={"id": "orders-only", "source": "us", "destination": "eu",
                                          "include": ["orders"]})
    assert again.status_code == 422
    assert "both would replicate topic 'orders' from region 'us'" in again.json()["detail"]
    disjoint = three.patch("/v1/links/us-to-eu", json={"exclude": ["orders"]})
    assert disjoint.status_code == 200
    assert three.post("/v1/links", json={"id": "orders-only", "source": "us", "destination": "eu",
                                         "include": ["orders"]}).status_code == 201


def test_duplicate_id_is_a_conflict(three: TestClient) -> None:
    assert three.post("/v1/links", json={"source": "us", "destination": "eu", "include": ["a.*"]}).status_code == 201
    response = three.post("/v1/links", json={"source": "us", "destination": "eu", "include": ["b.*"]})
    assert response.status_code == 409


def test_pause_and_resume(three: TestClient) -> None:
    three.post("/v1/links", json={"source": "us", "destination": "eu"})
    assert three.post("/v1/links/us-to-eu/pause").json()["paused"] is True
    assert three.get("/v1/links/us-to-eu").json()["paused"] is True
    assert three.post("/v1/links/us-to-eu/resume").json()["paused"] is False


def test_mesh_links_every_pair_and_is_idempotent(three: TestClient) -> None:
    first = three.post("/v1/links/mesh", json={"regions": ["us", "eu", "ap"]})
    assert first.status_code == 201
    ids = sorted(link["id"] for link in first.json()["links"])
    assert ids == ["ap-to-eu", "ap-to-us", "eu-to-ap", "eu-to-us", "us-to-ap", "us-to-eu"]
    assert sorted(link["id"] for link in three.post("/v1/links/mesh", json={"regions": ["us", "eu", "ap"]})
                  .json()["links"]) == ids
    assert len(three.get("/v1/links").json()) == 6


def test_mesh_with_an_unknown_region_writes_nothing(three: TestClient) -> None:
    response = three.post("/v1/links/mesh", json={"regions": ["us", "eu", "mars"]})
    assert response.status_code == 422
    assert three.get("/v1/links").json() == []


def test_hub_and_spoke_and_active_passive(three: TestClient) -> None:
    hub = three.post("/v1/links/hub-and-spoke", json={"hub": "us", "spokes": ["eu", "ap"], "direction": "to-hub"})
    assert sorted(link["id"] for link in hub.json()["links"]) == ["ap-to-us", "eu-to-us"]
    pair = three.post("/v1/links/active-passive", json={"active": "eu", "passive": "ap"})
    [link] = pair.json()["links"]
    assert (link["id"], link["naming"]) == ("eu-to-ap", "prefix")


def test_dry_run_lists_real_topics_under_destination_names(three: TestClient, regions: dict[str, Region]) -> None:
    orders, payments = unique_topic("orders"), unique_topic("payments")
    for topic in (orders, payments):
        create_topic(regions["us"].bootstrap, topic)
    proposed = three.post("/v1/links/dry-run", json={"source": "us", "destination": "eu", "include": ["orders-.*"],
                                                     "naming": "prefix"})
    assert proposed.status_code == 200
    mapped = {m["source_topic"]: m["destination_topic"] for m in proposed.json()["topics"]}
    assert mapped[orders] == f"us.{orders}" and payments not in mapped
    assert payments in proposed.json()["skipped"]
    assert three.get("/v1/links").json() == []
    three.post("/v1/links", json={"source": "us", "destination": "eu"})
    existing = three.get("/v1/links/us-to-eu/dry-run").json()
    assert {m["source_topic"] for m in existing["topics"]} >= {orders, payments}


def test_dry_run_reports_why_creation_would_be_refused(three: TestClient) -> None:
    three.post("/v1/links", json={"source": "us", "destination": "eu"})
    plan = three.post("/v1/links/dry-run", json={"id": "second", "source": "us", "destination": "eu"}).json()
    assert "link 'us-to-eu' covers the same topics" in plan["problem"]
