"""Workers register, heartbeat with stats and get their assignment; links move when workers go."""

import time

import pytest
import redis
from fastapi.testclient import TestClient

from amity.coordinator.settings import CoordinatorSettings
from amity.regions import Region
from amity.stats import LinkHealth, StatsReport, TopicStats
from tests.integration.coordinator.conftest import Anonymous, register
from tests.support.mirror import wait_for

SECRET = "s3cret-sasl-password"


@pytest.fixture
def meshed(api: TestClient, regions: dict[str, Region]) -> TestClient:
    register(api, regions["us"])
    register(api, regions["eu"])
    assert api.post("/v1/links/mesh", json={"regions": ["us", "eu"]}).status_code == 201
    return api


def join(api: TestClient, name: str) -> str:
    response = api.post("/v1/workers", json={"name": name, "version": "0.1.0"})
    assert response.status_code == 201
    return response.json()["worker_id"]


def beat(api: TestClient, worker_id: str, report: StatsReport | None = None, running: int | None = None) -> dict:
    body = {"stats": report.model_dump(mode="json")} if report else {}
    if running is not None:
        body["generation"] = running
    response = api.post(f"/v1/workers/{worker_id}/heartbeat", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def held(assignment: dict) -> list[str]:
    return sorted(item["link"]["id"] for item in assignment["links"])


def test_a_lone_worker_gets_every_link_with_connection_settings(meshed: TestClient, regions: dict[str, Region]) -> None:
    worker = join(meshed, "w1")
    assignment = beat(meshed, worker)
    assert held(assignment) == ["eu-to-us", "us-to-eu"]
    item = next(i for i in assignment["links"] if i["link"]["id"] == "us-to-eu")
    assert item["source"]["bootstrap"] == regions["us"].bootstrap
    assert item["destination"]["redis"] == regions["eu"].redis
    assert sorted(link["id"] for link in assignment["all_links"]) == ["eu-to-us", "us-to-eu"]
    assert assignment["generation"] >= 1 and assignment["rules"] == {"version": 0, "rules": []}


def test_assignment_carries_secrets_that_read_endpoints_hide(meshed: TestClient) -> None:
    meshed.post("/v1/regions", params={"check": "false"}, json={
        "name": "sec", "bootstrap": "127.0.0.1:1", "redis": "redis://127.0.0.1:1/0",
        "security": {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "amity",
                     "sasl_password": SECRET}})
    meshed.post("/v1/links", json={"source": "us", "destination": "sec"})
    worker = join(meshed, "w1")
    assignment = beat(meshed, worker)
    item = next(i for i in assignment["links"] if i["link"]["id"] == "us-to-sec")
    assert item["destination"]["security"]["sasl_password"] == SECRET
    assert Region.model_validate(item["destination"]).kafka_config()["sasl.password"] == SECRET
    assert SECRET not in meshed.get("/v1/regions").text


def test_links_spread_over_workers_and_move_when_one_goes_silent(meshed: TestClient) -> None:
    first, second = join(meshed, "w1"), join(meshed, "w2")
    a, b = beat(meshed, first), beat(meshed, second)
    a = beat(meshed, first)
    assert sorted(held(a) + held(b)) == ["eu-to-us", "us-to-eu"] and len(held(a)) == 1
    assert a["generation"] >= b["generation"]
    time.sleep(2.5)  # the second worker misses its heartbeats (timeout 2 s)
    after = beat(meshed, first)
    assert held(after) == ["eu-to-us", "us-to-eu"]
    assert after["generation"] > a["generation"]
    workers = {w["id"]: w for w in meshed.get("/v1/workers").json()}
    assert workers[first]["live"] and not workers[second]["live"]


def test_a_worker_leaving_frees_its_links_at_once(meshed: TestClient) -> None:
    first, second = join(meshed, "w1"), join(meshed, "w2")
    beat(meshed, first), beat(meshed, second)
    assert meshed.delete(f"/v1/workers/{second}").status_code == 204
    assert held(beat(meshed, first)) == ["eu-to-us", "us-to-eu"]
    gone = meshed.post(f"/v1/workers/{second}/heartbeat", json={})
    assert gone.status_code == 404 and "register again" in gone.json()["detail"]


def test_paused_links_are_not_assigned_but_listed(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    meshed.post("/v1/links/us-to-eu/pause")
    assignment = beat(meshed, worker)
    assert held(assignment) == ["eu-to-us"]
    assert {link["id"]: link["paused"] for link in assignment["all_links"]} == {"eu-to-us": False, "us-to-eu": True}


def test_rule_changes_reach_workers_with_the_next_heartbeat(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    before = beat(meshed, worker)
    meshed.put("/v1/rules", json={"topic": "orders", "policy": "lww"})
    after = beat(meshed, worker)
    assert after["rules"]["version"] == before["rules"]["version"] + 1
    assert after["rules"]["rules"][0]["topic"] == "orders"


def test_worker_endpoints_need_the_token(meshed: TestClient, anonymous: Anonymous) -> None:
    assert anonymous.post("/v1/workers", json={"name": "w1"}).status_code == 401
    worker = join(meshed, "w1")
    assert anonymous.post(f"/v1/workers/{worker}/heartbeat", json={}).status_code == 401


def report(run: str, replicated: int, **more: int) -> StatsReport:
    return StatsReport(run_id=run, topics=[TopicStats(link="us-to-eu", topic="orders", replicated=replicated,
                                                      bytes=replicated * 10, dropped={"loop": 1}, **more)])


def test_stats_add_up_across_reports_and_worker_restarts(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    beat(meshed, worker, report("run-1", 10))
    beat(meshed, worker, report("run-1", 25, lag_records=7))
    beat(meshed, worker, report("run-2", 5, lag_records=3))  # restarted: counts from zero again
    stats = meshed.get("/v1/stats", params={"link": "us-to-eu"}).json()
    [topic] = stats["topics"]
    assert topic["total"]["replicated"] == 30 and topic["total"]["bytes"] == 300
    assert topic["total"]["dropped"] == {"loop": 2}
    assert topic["last_minute"]["replicated"] == 30 and topic["throughput"]["records_per_s"] > 0
    assert topic["lag_records"] == 3
    [link] = stats["links"]
    assert (link["link"], link["topics"], link["total"]["replicated"]) == ("us-to-eu", 1, 30)
    assert meshed.get("/v1/stats", params={"topic": "other"}).json() == {"links": [], "topics": []}


def test_topology_shows_regions_links_and_their_state(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    meshed.post("/v1/links/eu-to-us/pause")
    beat(meshed, worker)
    view = meshed.get("/v1/topology").json()
    assert {r["name"]: r["status"] for r in view["regions"]} == {"eu": "up", "us": "up"}
    states = {link["id"]: (link["state"], link["worker"]) for link in view["links"]}
    assert states == {"us-to-eu": ("running", worker), "eu-to-us": ("paused", None)}
    assert view["unreachable"] == [{"source": "eu", "destination": "us"}]


def test_a_link_its_worker_reports_failing_is_retrying_with_the_problem(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    beat(meshed, worker)
    failing = LinkHealth(link="us-to-eu", healthy=False, problem="Kafka of eu did not answer: timed out")
    beat(meshed, worker, StatsReport(run_id="run-1", links=[failing, LinkHealth(link="eu-to-us", healthy=True)]))
    links = {link["id"]: link for link in meshed.get("/v1/topology").json()["links"]}
    assert (links["us-to-eu"]["state"], links["us-to-eu"]["problem"]) == ("retrying", failing.problem)
    assert (links["eu-to-us"]["state"], links["eu-to-us"]["problem"]) == ("running", None)

    beat(meshed, worker, StatsReport(run_id="run-1", links=[LinkHealth(link="us-to-eu", healthy=True)]))
    links = {link["id"]: link for link in meshed.get("/v1/topology").json()["links"]}
    assert (links["us-to-eu"]["state"], links["us-to-eu"]["problem"]) == ("running", None)


def test_metrics_count_links_by_topology_state(meshed: TestClient) -> None:
    """The alerts on unassigned, degraded and retrying links read these gauges."""
    worker = join(meshed, "w1")
    meshed.post("/v1/links/eu-to-us/pause")
    failing = LinkHealth(link="us-to-eu", healthy=False, problem="Redis of eu: Timeout")
    beat(meshed, worker, StatsReport(run_id="run-1", links=[failing]))

    def gauges() -> dict[str, float]:
        return {line.split('"')[1]: float(line.rsplit(" ", 1)[1]) for line in meshed.get("/metrics").text.splitlines()
                if line.startswith("amity_links{")}

    found = wait_for(lambda: (g := gauges()).get("retrying") == 1 and g, timeout_s=10, message="the links gauges")
    assert found == {"running": 0, "paused": 1, "unassigned": 0, "degraded": 0, "retrying": 1}


def test_a_problem_longer_than_the_limit_is_refused(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    body = {"stats": {"run_id": "run-1", "links": [{"link": "us-to-eu", "healthy": False, "problem": "x" * 1001}]}}
    assert meshed.post(f"/v1/workers/{worker}/heartbeat", json=body).status_code == 422


def test_totals_stop_at_the_limit_instead_of_failing(meshed: TestClient, settings: CoordinatorSettings) -> None:
    worker = join(meshed, "w1")
    client = redis.Redis.from_url(settings.redis_url)
    client.hset(f"{settings.namespace}stats:totals", "us-to-eu|orders|replicated", 8_999_999_999_999_999_000)
    client.close()
    beat(meshed, worker, report("run-1", 10_000))
    [topic] = meshed.get("/v1/stats").json()["topics"]
    assert topic["total"]["replicated"] == 9_000_000_000_000_000_000
    assert topic["last_minute"]["replicated"] == 10_000


def test_workers_list_shows_the_generation_each_runs(meshed: TestClient) -> None:
    worker = join(meshed, "w1")
    generation = beat(meshed, worker)["generation"]
    assert meshed.get("/v1/workers").json()[0]["running_generation"] is None
    beat(meshed, worker, running=generation)
    [listed] = meshed.get("/v1/workers").json()
    assert (listed["running_generation"], listed["live"]) == (generation, True)
    assert listed["links"] == ["eu-to-us", "us-to-eu"]
