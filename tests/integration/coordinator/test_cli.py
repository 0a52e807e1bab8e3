"""The `amity` commands against a real coordinator process (uvicorn) on real regions."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from amity.cli.main import app
from amity.coordinator.settings import CoordinatorSettings
from amity.regions import Region
from tests.integration.coordinator.conftest import AUTH, TOKEN
from tests.integration.coordinator.server import coordinator_process
from tests.support.kafka import create_topic, unique_topic


@pytest.fixture
def url(settings: CoordinatorSettings, tmp_path: Path) -> Iterator[str]:
    env = {"AMITY_REDIS_URL": settings.redis_url, "AMITY_NAMESPACE": settings.namespace,
           "AMITY_API_TOKEN": TOKEN, "AMITY_PROBE_TIMEOUT_S": "3"}
    with coordinator_process(env, tmp_path / "coordinator.log") as running:
        yield running


@pytest.fixture
def amity(url: str):  # noqa: ANN201 - returns the invoke helper below
    runner = CliRunner()

    def invoke(*args: str, token: str | None = TOKEN, ok: bool = True):  # noqa: ANN202 - click Result
        env = {"AMITY_URL": url, "AMITY_API_TOKEN": token or "", "COLUMNS": "250"}
        result = runner.invoke(app, list(args), env=env)
        assert (result.exit_code == 0) is ok, f"{args}: {result.output}{result.stderr}"
        return result

    return invoke


def test_regions_links_and_topology(amity, regions: dict[str, Region]) -> None:  # noqa: ANN001
    for name in ("us", "eu"):
        added = amity("region", "add", name, "--bootstrap", regions[name].bootstrap, "--redis", regions[name].redis)
        assert f"region {name} registered (up)" in added.stdout
    assert [r["name"] for r in json.loads(amity("region", "list", "--json").stdout)] == ["eu", "us"]
    assert "ok (" in amity("region", "show", "us").stdout
    meshed = amity("mesh", "us", "eu", "--include", "orders.*")
    assert "us-to-eu" in meshed.stdout and "eu-to-us" in meshed.stdout
    links = json.loads(amity("link", "list", "--json").stdout)
    assert sorted(link["id"] for link in links) == ["eu-to-us", "us-to-eu"]
    assert "paused" in amity("link", "pause", "us-to-eu").stdout
    assert json.loads(amity("link", "show", "us-to-eu", "--json").stdout)["paused"] is True
    amity("link", "resume", "us-to-eu")
    view = json.loads(amity("topology", "--json").stdout)
    assert {link["id"]: link["state"] for link in view["links"]} == {"us-to-eu": "unassigned", "eu-to-us": "unassigned"}
    assert "removed" in amity("link", "rm", "eu-to-us").stdout
    refused = amity("region", "rm", "eu", ok=False)
    assert "used by links ['us-to-eu']" in refused.stderr
    assert "with links us-to-eu" in amity("region", "rm", "eu", "--force").stdout


def test_link_dry_run_shows_real_topics(amity, regions: dict[str, Region]) -> None:  # noqa: ANN001
    topic = unique_topic("orders")
    create_topic(regions["us"].bootstrap, topic)
    for name in ("us", "eu"):
        amity("region", "add", name, "--bootstrap", regions[name].bootstrap, "--redis", regions[name].redis)
    preview = amity("link", "add", "us", "eu", "--include", "orders-.*", "--naming", "prefix", "--dry-run")
    assert f"us.{topic}" in preview.stdout
    assert json.loads(amity("link", "list", "--json").stdout) == []
    amity("link", "add", "us", "eu", "--include", "orders-.*")
    plan = json.loads(amity("link", "dry-run", "us-to-eu", "--json").stdout)
    assert {"source_topic": topic, "destination_topic": topic} in plan["topics"]


def test_rules_set_get_and_history(amity) -> None:  # noqa: ANN001
    assert "rules version 1" in amity("rules", "set", "orders", "--policy", "lww").stdout
    amity("rules", "set", "pay.*", "--policy", "timestamp", "--field", "json:updated_at")
    assert "timestamp (field json:updated_at)" in amity("rules", "get", "payments").stdout
    listed = json.loads(amity("rules", "get", "--json").stdout)
    assert [r["topic"] for r in listed["rules"]] == ["orders", "pay.*"]
    history = json.loads(amity("rules", "history", "--json").stdout)
    assert [(c["version"], c["actor"]) for c in history] == [(2, "operator"), (1, "operator")]
    assert "rules version 3" in amity("rules", "rm", "orders").stdout
    bad = amity("rules", "set", "orders", "--policy", "coin-toss", ok=False)
    assert "body.policy" in bad.stderr and "[HTTP 422]" in bad.stderr
    amity("rules", "set", "clicks", "--first-hop", "timestamp")
    assert "lww (first hop from the record timestamp)" in amity("rules", "get", "clicks").stdout
    unfit = amity("rules", "set", "clicks", "--policy", "vector", "--first-hop", "timestamp", ok=False)
    assert "first_hop timestamp is for policies lww and timestamp" in unfit.stderr and "[HTTP 422]" in unfit.stderr


def test_stats_from_a_worker_heartbeat(amity, url: str, regions: dict[str, Region]) -> None:  # noqa: ANN001
    for name in ("us", "eu"):
        amity("region", "add", name, "--bootstrap", regions[name].bootstrap, "--redis", regions[name].redis)
    amity("link", "add", "us", "eu")
    worker = httpx.post(f"{url}/v1/workers", json={"name": "w1"}, headers=AUTH).json()["worker_id"]
    report = {"run_id": "run-1", "topics": [{"link": "us-to-eu", "topic": "orders", "replicated": 120,
                                             "bytes": 1200, "dropped": {"loop": 3}, "lag_records": 4}]}
    httpx.post(f"{url}/v1/workers/{worker}/heartbeat", json={"stats": report}, headers=AUTH).raise_for_status()
    view = json.loads(amity("stats", "--link", "us-to-eu", "--json").stdout)
    assert view["topics"][0]["total"]["replicated"] == 120
    table = amity("stats").stdout
    assert "orders" in table and "loop 3" in table
    assert "orders" in amity("stats", "--watch", "--interval", "0.2", "--count", "2").stdout
    assert worker in amity("coordinator", "workers").stdout


def test_errors_are_one_line_with_a_non_zero_exit(amity) -> None:  # noqa: ANN001
    missing = amity("region", "show", "mars", ok=False)
    assert missing.exit_code == 1
    assert missing.stderr.strip().splitlines() == [
        "error: region 'mars' is not registered (GET /v1/regions, or `amity region list`, shows those that are) "
        "[HTTP 404]"]
    no_token = amity("rules", "set", "orders", token=None, ok=False)
    assert "Authorization: Bearer" in no_token.stderr and "set AMITY_API_TOKEN" in no_token.stderr
    unreachable = amity("region", "add", "gone", "--bootstrap", "127.0.0.1:1", ok=False)
    assert "Kafka at 127.0.0.1:1 did not answer" in unreachable.stderr


def test_an_unreachable_coordinator_is_one_clear_line() -> None:
    result = CliRunner().invoke(app, ["region", "list", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 1
    assert "cannot reach the coordinator at http://127.0.0.1:1" in result.stderr
