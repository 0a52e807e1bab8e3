"""Schemathesis against a real coordinator process: no 5xx, and every response fits the OpenAPI schema.

One coordinator (uvicorn) and one key namespace for the whole module. It may
only connect to loopback hosts, so generated regions never send traffic
elsewhere, and its reachability checks give up after a second. Real regions,
a mesh, rules and a worker are registered first, and path parameters often
name them, so that generated requests reach past "not found".
"""

import json
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from amity.regions import Region
from tests.integration.coordinator.conftest import AUTH, TOKEN, fresh_namespace
from tests.integration.coordinator.server import coordinator_process

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzzed_url(regions: dict[str, Region], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with fresh_namespace(regions["us"].redis) as namespace:
        env = {"AMITY_REDIS_URL": regions["us"].redis, "AMITY_NAMESPACE": namespace, "AMITY_API_TOKEN": TOKEN,
               "AMITY_PROBE_TIMEOUT_S": "1", "AMITY_ALLOWED_HOSTS": json.dumps(["127.0.0.1", "localhost"]),
               "AMITY_HEALTH_INTERVAL_S": "2", "AMITY_MAX_BODY_BYTES": "65536"}
        with coordinator_process(env, tmp_path_factory.mktemp("fuzz") / "coordinator.log") as url:
            yield url


def seed(fuzzed_url: str, regions: dict[str, Region]) -> dict[str, list[str]]:
    """(Re)create real state, which earlier operations may have deleted; returns path parameters naming it."""
    with httpx.Client(base_url=fuzzed_url, headers=AUTH, timeout=30) as api:
        for rule in api.get("/v1/rules").json()["rules"]:  # a rule naming a region keeps it from being deleted
            api.delete("/v1/rules", params={"topic": rule["topic"]}).raise_for_status()
        for region in regions.values():
            api.delete(f"/v1/regions/{region.name}", params={"force": "true"})
            api.post("/v1/regions", json={"name": region.name, "bootstrap": region.bootstrap, "redis": region.redis},
                     params={"check": "false"}).raise_for_status()
        links = [link["id"] for link in api.post("/v1/links/mesh", json={"regions": list(regions)}).json()["links"]]
        api.put("/v1/rules", json={"topic": "orders", "policy": "lww"}).raise_for_status()
        worker = api.post("/v1/workers", json={"name": "fuzz"}).json()["worker_id"]
    return {"name": list(regions), "link_id": links, "worker_id": [worker]}


def region_fields(names: list[str]) -> st.SearchStrategy[dict]:
    """Body fields that name regions, set to real ones so that bodies reach the link checks."""
    one, some = st.sampled_from(names), st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
    return st.fixed_dictionaries({}, optional={
        "source": one, "destination": one, "hub": one, "active": one, "passive": one, "regions": some,
        "spokes": some})


def test_no_server_errors_and_responses_fit_the_schema(fuzzed_url: str, regions: dict[str, Region]) -> None:
    # One hypothesis run per operation inside one test: schemathesis' own pytest plugin does not load
    # under pytest 9, and this keeps one coordinator process for the whole run.
    api_schema = schemathesis.openapi.from_url(f"{fuzzed_url}/openapi.json")
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    for operation in operations:
        _fuzz(operation, seed(fuzzed_url, regions))


def _fuzz(operation: schemathesis.APIOperation, known: dict[str, list[str]]) -> None:
    overrides = st.fixed_dictionaries({}, optional={name: st.sampled_from(values) for name, values in known.items()})

    @given(case=operation.as_strategy(), override=overrides, fields=region_fields(known["name"]))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def calls(case: schemathesis.Case, override: dict[str, str], fields: dict) -> None:
        for name, value in override.items():
            if case.path_parameters and name in case.path_parameters:
                case.path_parameters[name] = value
        if isinstance(case.body, dict):
            case.body.update({name: value for name, value in fields.items() if name in case.body})
        case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)

    calls()
