"""/v1/rules: versioned conflict rules with history."""

from fastapi.testclient import TestClient

from amity.regions import Region
from tests.integration.coordinator.conftest import Anonymous, register


def test_rules_are_versioned_with_who_and_what(api: TestClient, anonymous: Anonymous) -> None:
    assert api.get("/v1/rules").json() == {"version": 0, "rules": []}
    first = api.put("/v1/rules", json={"topic": "orders", "policy": "lww"})
    assert first.status_code == 200
    assert (first.json()["version"], first.json()["actor"], first.json()["before"]) == (1, "operator", None)
    api.put("/v1/rules", json={"topic": "pay.*", "policy": "timestamp", "field": "json:updated_at"})
    changed = api.put("/v1/rules", json={"topic": "orders", "policy": "none"}).json()
    assert changed["before"]["policy"] == "lww" and changed["after"]["policy"] == "none"
    current = anonymous.get("/v1/rules").json()
    assert current["version"] == 3
    assert [(r["topic"], r["policy"]) for r in current["rules"]] == [("orders", "none"), ("pay.*", "timestamp")]
    history = api.get("/v1/rules/history", params={"topic": "orders"}).json()["changes"]
    assert [c["version"] for c in history] == [3, 1]


def test_match_finds_the_rule_for_a_topic(api: TestClient) -> None:
    api.put("/v1/rules", json={"topic": "pay.*", "policy": "lww"})
    assert api.get("/v1/rules/match", params={"topic": "payments"}).json()["rule"]["topic"] == "pay.*"
    assert api.get("/v1/rules/match", params={"topic": "orders"}).json()["rule"] is None


def test_delete_records_the_removal(api: TestClient) -> None:
    api.put("/v1/rules", json={"topic": "orders", "policy": "lww"})
    removed = api.delete("/v1/rules", params={"topic": "orders"}).json()
    assert (removed["action"], removed["after"], removed["version"]) == ("delete", None, 2)
    assert api.delete("/v1/rules", params={"topic": "orders"}).status_code == 404


def test_unknown_regions_and_policies_are_refused(api: TestClient, regions: dict[str, Region]) -> None:
    register(api, regions["us"])
    unknown_region = api.put("/v1/rules", json={"topic": "orders", "policy": "region-priority",
                                                "regions": ["us", "mars"]})
    assert unknown_region.status_code == 422 and "['mars']" in unknown_region.json()["detail"]
    unknown_policy = api.put("/v1/rules", json={"topic": "orders", "policy": "coin-toss"})
    assert unknown_policy.status_code == 422 and "body.policy" in unknown_policy.json()["detail"]
    missing_field = api.put("/v1/rules", json={"topic": "orders", "policy": "timestamp"})
    assert missing_field.status_code == 422 and "needs `field`" in missing_field.json()["detail"]
    assert api.get("/v1/rules").json()["version"] == 0


def test_rule_changes_need_the_token(anonymous: Anonymous) -> None:
    assert anonymous.request("PUT", "/v1/rules", json={"topic": "orders"}).status_code == 401
