"""POST /v1/failover and /v1/failback on a real coordinator process.

The regions and a link us -> eu are registered through the coordinator's API,
a coordinated mirror worker copies the topic into eu, and groups read it in
us; every move asks the coordinator, never the regions file.
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from typer.testing import CliRunner

from amity.cli.main import app
from amity.regions import Region
from tests.integration.coordinator.conftest import AUTH, TOKEN, fresh_namespace, register
from tests.integration.coordinator.server import coordinator_process
from tests.integration.failover.support import committed, consume, duplicates, member
from tests.support.kafka import create_topic, produce, read_all, unique_topic
from tests.support.mirror import CoordinatedWorker, free_port, wait_for

PARTITIONS = 3
RECORDS = 600
PROCESSED_IN_US = 250


@dataclass(frozen=True)
class Mirrored:
    api: httpx.Client
    url: str
    topic: str


@pytest.fixture(scope="module")
def mirrored(regions: dict[str, Region], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirrored]:
    """A coordinator (token required) holding us, eu and a link us -> eu for one topic, copied into eu."""
    us, eu = regions["us"], regions["eu"]
    topic = unique_topic("failover")
    workdir = tmp_path_factory.mktemp("rest")
    with fresh_namespace(us.redis) as namespace:
        env = {"AMITY_REDIS_URL": us.redis, "AMITY_NAMESPACE": namespace, "AMITY_API_TOKEN": TOKEN,
               "AMITY_HEARTBEAT_INTERVAL_S": "0.5", "AMITY_WORKER_TIMEOUT_S": "3", "AMITY_FAILOVER_TIMEOUT_S": "3"}
        with coordinator_process(env, workdir / "coordinator.log") as url, \
                httpx.Client(base_url=url, headers=AUTH, timeout=120) as api:
            for region in (us, eu):
                register(api, region)
            assert api.post("/v1/links", json={"source": "us", "destination": "eu", "include": [topic]}).is_success
            create_topic(us.bootstrap, topic, partitions=PARTITIONS)
            produce(us.bootstrap, topic, [(f"k{n % 13}".encode(), f"us-{n}".encode()) for n in range(RECORDS)])
            with CoordinatedWorker(workdir, url, TOKEN):
                wait_for(lambda: len(read_all(eu.bootstrap, topic)) == RECORDS, timeout_s=90,
                         message=f"{RECORDS} records in eu")
            yield Mirrored(api, url, topic)


@dataclass(frozen=True)
class Group:
    name: str
    processed: list[bytes]


@pytest.fixture
def group(regions: dict[str, Region], mirrored: Mirrored) -> Group:
    """A new group that processed part of the topic in us."""
    name = f"g-{uuid.uuid4().hex[:8]}"
    return Group(name, consume(regions["us"], name, mirrored.topic, limit=PROCESSED_IN_US))


def move(mirrored: Mirrored, group: str, **fields: object) -> dict:
    """The body of a move of `group` between us and eu, scanning (no checkpointer indexes these topics)."""
    return {"group": group, "topic": mirrored.topic, "source": "us", "destination": "eu", "scan": True, **fields}


def problem(response: httpx.Response, status: int) -> str:
    """The detail of a problem response with this status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"], body
    return body["detail"]


def offsets(report: dict) -> dict[int, int]:
    return {p["partition"]: p["offset"] for p in report["partitions"]}


def test_dry_run_answers_the_plan_and_commits_nothing(regions, mirrored: Mirrored, group: Group) -> None:
    response = mirrored.api.post("/v1/failover", json=move(mirrored, group.name, dry_run=True))
    assert response.status_code == 200, response.text
    plan = response.json()
    assert (plan["committed"], plan["basis"], plan["moved_to"], plan["to_topic"]) == (False, "live", "eu",
                                                                                       mirrored.topic)
    in_us = committed(regions["us"], group.name, mirrored.topic, PARTITIONS)
    assert offsets(plan) == {p: in_us.get(p, 0) for p in range(PARTITIONS)}
    assert all(p["previous"] is None and p["redelivered"] == 0 for p in plan["partitions"])
    assert committed(regions["eu"], group.name, mirrored.topic, PARTITIONS) == {}


def test_failover_commits_the_reported_offsets_and_failback_brings_the_group_back(regions, mirrored: Mirrored,
                                                                                  group: Group) -> None:
    us, eu, topic = regions["us"], regions["eu"], mirrored.topic
    response = mirrored.api.post("/v1/failover", json=move(mirrored, group.name))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["committed"] is True and report["direction"] == "failover"
    assert committed(eu, group.name, topic, PARTITIONS) == offsets(report)

    in_eu = consume(eu, group.name, topic)
    assert len(group.processed) + len(in_eu) == RECORDS
    assert duplicates(group.processed, in_eu) == 0

    back = mirrored.api.post("/v1/failback", json=move(mirrored, group.name))
    assert back.status_code == 200, back.text
    returned = back.json()
    assert (returned["direction"], returned["moved_from"], returned["moved_to"]) == ("failback", "eu", "us")
    assert offsets(returned) == {p["partition"]: p["end"] for p in returned["partitions"]}
    assert committed(us, group.name, topic, PARTITIONS) == offsets(returned)


def test_the_cli_with_a_coordinator_url_moves_through_it(mirrored: Mirrored, group: Group) -> None:
    runner = CliRunner()
    args = ["--group", group.name, "--topic", mirrored.topic, "--from", "us", "--to", "eu", "--url", mirrored.url,
            "--scan"]
    env = {"AMITY_API_TOKEN": TOKEN, "COLUMNS": "200"}
    plan = runner.invoke(app, ["failover", *args, "--dry-run"], env=env)
    assert plan.exit_code == 0, plan.output
    assert f"failover of group {group.name}: us/{mirrored.topic} -> eu/{mirrored.topic}" in plan.stdout
    assert "would commit (dry run)" in plan.stdout

    refused = runner.invoke(app, ["failback", *args], env=env)
    assert refused.exit_code == 1
    assert f"group {group.name} has no committed offset on {mirrored.topic} in eu [HTTP 404]" in refused.stderr


def test_group_active_in_the_destination_is_a_conflict(regions, mirrored: Mirrored, group: Group) -> None:
    with member(regions["eu"], group.name, mirrored.topic):
        detail = problem(mirrored.api.post("/v1/failover", json=move(mirrored, group.name)), 409)
    assert f"group {group.name} has 1 active member(s) in eu: stop its consumers there first" in detail


def test_unknown_group_is_not_found(mirrored: Mirrored) -> None:
    nobody = f"nobody-{uuid.uuid4().hex[:6]}"
    detail = problem(mirrored.api.post("/v1/failover", json=move(mirrored, nobody)), 404)
    assert detail == f"group {nobody} has no committed offset on {mirrored.topic} in us"


def test_no_link_for_the_topic_is_a_conflict(regions, mirrored: Mirrored, group: Group) -> None:
    other = unique_topic("unlinked")
    create_topic(regions["us"].bootstrap, other)
    detail = problem(mirrored.api.post("/v1/failover", json={**move(mirrored, group.name), "topic": other}), 409)
    assert detail == f"no link us -> eu replicates {other}: eu has no copy of it to move the group to"


def test_missing_translation_state_is_a_conflict_that_says_what_to_do(regions, mirrored: Mirrored,
                                                                       group: Group) -> None:
    detail = problem(mirrored.api.post("/v1/failover", json=move(mirrored, group.name, scan=False)), 409)
    assert detail.startswith(f"no offset index for {mirrored.topic} in us's Redis: start `amity checkpoint run")
    assert 'or pass "scan": true' in detail
    assert committed(regions["eu"], group.name, mirrored.topic, PARTITIONS) == {}


def test_destination_behind_is_a_conflict_until_allowed(regions, mirrored: Mirrored) -> None:
    us, eu = regions["us"], regions["eu"]
    lagging, group = unique_topic("lagging"), f"g-{uuid.uuid4().hex[:8]}"
    for region in (us, eu):
        create_topic(region.bootstrap, lagging)
    link = {"id": f"paused-{lagging}", "source": "us", "destination": "eu", "include": [lagging], "paused": True}
    assert mirrored.api.post("/v1/links", json=link).is_success
    produce(us.bootstrap, lagging, [(None, f"r{n}".encode()) for n in range(100)])
    consume(us, group, lagging, limit=60)
    body = {**move(mirrored, group), "topic": lagging}

    detail = problem(mirrored.api.post("/v1/failover", json=body), 409)
    assert detail.startswith(f"eu lacks records the group already processed in us (stream us/{lagging}/0")
    assert detail.endswith('wait for the mirror to catch up, or allow it ("allow_behind": true)')
    assert committed(eu, group, lagging, 1) == {}

    allowed = mirrored.api.post("/v1/failover", json={**body, "allow_behind": True})
    assert allowed.status_code == 200, allowed.text
    assert committed(eu, group, lagging, 1) == {0: 0}


def test_unreachable_destination_is_unavailable(regions, mirrored: Mirrored, group: Group) -> None:
    dead = {"name": "sa", "bootstrap": f"127.0.0.1:{free_port()}", "redis": regions["eu"].redis}
    assert mirrored.api.post("/v1/regions", json=dead, params={"check": "false"}).status_code == 201
    try:
        link = {"source": "us", "destination": "sa", "include": [mirrored.topic], "paused": True}
        assert mirrored.api.post("/v1/links", json=link).is_success
        response = mirrored.api.post("/v1/failover", json={**move(mirrored, group.name), "destination": "sa"})
        detail = problem(response, 503)
        assert detail == f"region sa does not answer at {dead['bootstrap']}: the group cannot be moved there now"
    finally:
        mirrored.api.delete("/v1/regions/sa", params={"force": "true"})


def test_unregistered_region_is_refused(mirrored: Mirrored, group: Group) -> None:
    response = mirrored.api.post("/v1/failover", json={**move(mirrored, group.name), "destination": "mars"})
    assert "regions ['mars'] are not registered" in problem(response, 422)


@pytest.mark.parametrize(("change", "expected"), [
    ({"group": None}, "body.group: required"),
    ({"colour": "red"}, "body.colour: unknown field"),
    ({"destination": "us"}, "source and destination are both 'us'"),
    ({"topic": "orders/eu"}, "body.topic: String should match pattern"),
    ({"remote_topic": "us.orders"}, "body.remote_topic: unknown field"),
])
def test_malformed_requests_are_invalid(mirrored: Mirrored, change: dict, expected: str) -> None:
    body = {k: v for k, v in {**move(mirrored, "g"), **change}.items() if v is not None}
    response = mirrored.api.post("/v1/failback", json=body)
    assert expected in problem(response, 422)
    assert response.json()["errors"]


def test_a_move_needs_the_token(mirrored: Mirrored, group: Group) -> None:
    with httpx.Client(base_url=mirrored.url, timeout=30) as anonymous:
        response = anonymous.post("/v1/failover", json=move(mirrored, group.name, dry_run=True))
    assert "Authorization: Bearer <token>" in problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
