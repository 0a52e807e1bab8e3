"""deploy/: the Dockerfile and its helpers, the Compose file, the Helm chart, the Grafana dashboard and the alert
rules, checked as far as a machine without a Docker engine or a Kubernetes cluster allows (docs/deploy.md).

`make deploy-check` also builds helm (for `helm lint` and `helm template`) and runs the Dockerfile's install
step into a virtualenv (AMITY_DEPLOY_VENV), which the last tests here then exercise.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import httpx
import jsonschema
import kubernetes_validate
import pytest
import redis
import yaml

from amity.coordinator.schemas.topology import LinkState
from amity.dev.settings import REPO_ROOT
from amity.regions import Region
from tests.integration.coordinator.server import free_port

DEPLOY = REPO_ROOT / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
CHART = DEPLOY / "helm" / "amity"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
HELM = shutil.which("helm") or str(REPO_ROOT / ".cache" / "bin" / "helm")
INSTALLED = os.environ.get("AMITY_DEPLOY_VENV")
KUBERNETES_VERSIONS = ["1.25.0", "1.37.0"]  # the chart's kubeVersion floor, and the newest schemas to hand
TOKEN = "deploy-test-token-0123456789"

needs_helm = pytest.mark.skipif(not os.access(HELM, os.X_OK), reason="no helm binary: `make helm` builds it from the "
                                "Go module proxy (about 6 minutes), `make deploy-check` does and runs these tests")
needs_installed = pytest.mark.skipif(INSTALLED is None, reason="the Dockerfile's install step runs in "
                                     "`make deploy-check` (over a minute of pip), which sets AMITY_DEPLOY_VENV")


# ---- the Dockerfile ------------------------------------------------------------------------------

def dockerfile_stages(path: Path) -> list[list[tuple[str, str]]]:
    """Instructions (KEYWORD, arguments) per build stage, continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in path.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    stages: list[list[tuple[str, str]]] = []
    for instruction in logical:
        keyword, _, arguments = instruction.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), arguments.strip()))
    return stages


def test_the_image_runs_as_a_non_root_user_with_a_healthcheck() -> None:
    build, final = dockerfile_stages(DOCKERFILE)
    keywords = [keyword for keyword, _ in final]
    user = [args for keyword, args in final if keyword == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0"), "the image runs as a non-root user"
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))
    [healthcheck] = [args for keyword, args in final if keyword == "HEALTHCHECK"]
    assert "/opt/amity/healthcheck.py" in healthcheck
    [entrypoint] = [json.loads(args) for keyword, args in final if keyword == "ENTRYPOINT"]
    assert entrypoint == ["amity"]
    env = " ".join(args for keyword, args in final if keyword == "ENV")
    assert "AMITY_HOST=0.0.0.0" in env, "the coordinator must listen beyond the container's loopback"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert final[0][1] == build[0][1].split()[0] == "${PYTHON_IMAGE}" and base
    assert base.group(1).startswith("python:3.11-slim"), "both stages start from the slim Python image"
    assert not any(keyword == "RUN" and "apt-get" in args for keyword, args in final), "no packages in the runtime image"


def test_the_image_copies_sources_that_exist_and_installs_them_with_install_sh() -> None:
    build, final = dockerfile_stages(DOCKERFILE)
    for keyword, args in build:
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    [install] = [args for keyword, args in build if keyword == "RUN"]
    assert install == "sh deploy/docker/install.sh /opt/amity /src"
    assert ("COPY", "--from=build /opt/amity /opt/amity") in final
    installed = (DEPLOY / "docker" / "install.sh").read_text()
    assert "healthcheck.py\" \"$prefix/healthcheck.py\"" in installed


# ---- the container helpers, run from the project's virtualenv against a real coordinator ---------

@contextmanager
def serving(amity: list[str], regions: dict[str, Region], log: Path) -> Iterator[str]:
    """`amity coordinator run` from the given installation, as the image runs it (production settings), on a
    namespace of its own in the us region's Redis; stopped by its pid."""
    namespace = f"amity:deploy:{uuid.uuid4().hex[:10]}:"
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMITY_")}
    env = {**clean, "AMITY_REDIS_URL": regions["us"].redis, "AMITY_NAMESPACE": namespace, "AMITY_API_TOKEN": TOKEN,
           "AMITY_ENVIRONMENT": "production", "AMITY_HEALTH_INTERVAL_S": "1", "AMITY_PORT": str(port)}
    with open(log, "wb") as out:
        process = subprocess.Popen([*amity, "coordinator", "run", "--log-level", "warning"], env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while healthcheck(sys.executable, AMITY_HEALTHCHECK_URL=f"{url}/healthz").returncode != 0:
            assert process.poll() is None and time.monotonic() < deadline, f"no coordinator: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        client = redis.Redis.from_url(regions["us"].redis)
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def coordinator_url(regions: dict[str, Region], tmp_path: Path) -> Iterator[str]:
    with serving([sys.executable, "-m", "amity.cli"], regions, tmp_path / "coordinator.log") as url:
        yield url


def healthcheck(python: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMITY_")}
    return subprocess.run([python, str(DEPLOY / "docker" / "healthcheck.py")], env={**clean, **env},
                          capture_output=True, text=True, timeout=30)


def test_healthcheck_follows_a_workers_stats_file(tmp_path: Path) -> None:
    stats = tmp_path / "stats.json"
    missing = healthcheck(sys.executable, AMITY_MIRROR_STATS_FILE=str(stats))
    assert missing.returncode == 1 and "not been written yet" in missing.stderr
    stats.write_text("{}")
    assert healthcheck(sys.executable, AMITY_MIRROR_STATS_FILE=str(stats)).returncode == 0
    os.utime(stats, (time.time() - 120, time.time() - 120))
    stuck = healthcheck(sys.executable, AMITY_MIRROR_STATS_FILE=str(stats))
    assert stuck.returncode == 1 and "stuck" in stuck.stderr


def test_healthcheck_asks_the_coordinator(coordinator_url: str) -> None:
    port = coordinator_url.rsplit(":", 1)[1]
    assert healthcheck(sys.executable, AMITY_PORT=port).returncode == 0
    nobody = healthcheck(sys.executable, AMITY_HEALTHCHECK_URL="http://127.0.0.1:9/healthz")
    assert nobody.returncode == 1 and "does not answer" in nobody.stderr


def apply_topology(python: list[str], url: str, spec: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([*python, spec.as_posix()], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "AMITY_URL": url, "AMITY_API_TOKEN": TOKEN, **env})


def topology_file(regions: dict[str, Region], tmp_path: Path, **extra: object) -> Path:
    spec = {"regions": [{"name": r.name, "bootstrap": r.bootstrap, "redis": r.redis} for r in regions.values()],
            "mesh": {"regions": ["us", "eu"], "include": [f"deploy-{uuid.uuid4().hex[:8]}-.*"]}, **extra}
    path = tmp_path / "topology.json"
    path.write_text(json.dumps(spec))
    return path


def test_apply_topology_registers_regions_and_a_mesh_then_keeps_them(regions: dict[str, Region],
                                                                     coordinator_url: str, tmp_path: Path) -> None:
    script = [sys.executable, str(DEPLOY / "docker" / "apply_topology.py")]
    spec = topology_file(regions, tmp_path)
    first = apply_topology(script, coordinator_url, spec)
    assert first.returncode == 0, first.stderr
    assert {f"registered region {name}" for name in regions} <= set(first.stdout.splitlines())
    assert "mesh: eu-to-us, us-to-eu" in first.stdout
    again = apply_topology(script, coordinator_url, spec)
    assert again.returncode == 0, again.stderr
    assert {f"region {name} unchanged" for name in regions} <= set(again.stdout.splitlines())

    moved = json.loads(spec.read_text())
    moved["regions"][0]["security"] = {"security_protocol": "PLAINTEXT", "sasl_username": "amity"}
    moved["regions"][0]["sasl_password_env"] = "DEPLOY_TEST_SASL_PASSWORD"
    spec.write_text(json.dumps(moved))
    unset = apply_topology(script, coordinator_url, spec)
    assert unset.returncode != 0 and "DEPLOY_TEST_SASL_PASSWORD is not set" in unset.stderr
    updated = apply_topology(script, coordinator_url, spec, DEPLOY_TEST_SASL_PASSWORD="s3cret")
    assert updated.returncode == 0, updated.stderr
    assert f"updated region {moved['regions'][0]['name']}" in updated.stdout
    shown = httpx.get(f"{coordinator_url}/v1/regions/{moved['regions'][0]['name']}").json()
    assert shown["security"]["sasl_username"] == "amity" and shown["security"]["sasl_password_set"] is True


# ---- the image's virtualenv, as the Dockerfile builds it (make deploy-check) ---------------------

@needs_installed
def test_the_installed_image_serves_the_dashboard_and_its_helpers_work(regions: dict[str, Region],
                                                                       tmp_path: Path) -> None:
    venv = Path(INSTALLED)
    python = str(venv / "bin" / "python")
    assert (venv / "healthcheck.py").exists() and os.access(venv / "bin" / "amity-apply-topology", os.X_OK)
    with serving([str(venv / "bin" / "amity")], regions, tmp_path / "coordinator.log") as url:
        page = httpx.get(f"{url}/ui/")
        assert page.status_code == 200 and "Amity dashboard" in page.text, "the dashboard is package data"
        assert httpx.get(f"{url}/ui/app.js").status_code == 200
        assert healthcheck(python, AMITY_HEALTHCHECK_URL=f"{url}/healthz").returncode == 0
        applied = apply_topology([str(venv / "bin" / "amity-apply-topology")], url, topology_file(regions, tmp_path))
        assert applied.returncode == 0, applied.stderr
    assert healthcheck(python, AMITY_HEALTHCHECK_URL=f"{url}/healthz").returncode == 1


# ---- Docker Compose ------------------------------------------------------------------------------

def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    broken = compose()
    broken["services"]["coordinator"]["depends_on"] = {"redis-us": {"condition": "whenever"}}
    assert list(validator.iter_errors(broken)), "the schema check can fail"


def test_compose_services_refer_to_what_exists() -> None:
    spec = compose()
    services = spec["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in spec["volumes"], f"{name} uses undeclared volume {source}"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
    build = services["coordinator"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    built = services["coordinator"]["image"]
    assert all(s["image"] == built for s in (services["setup"], services["mirror"]))
    assert services["mirror"]["environment"]["AMITY_MIRROR_STATS_FILE"].startswith("/tmp/")


def test_the_compose_topology_names_the_compose_regions() -> None:
    services = compose()["services"]
    topology = json.loads((COMPOSE.parent / "topology.json").read_text())
    for entry in topology["regions"]:
        region = Region.model_validate(entry)
        host, port = region.bootstrap.split(":")
        advertised = services[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        assert f"//{host}:{port}" in advertised, f"{region.name} names a listener {host} does not advertise"
        redis_host = region.redis.split("//")[1].split(":")[0]
        assert redis_host in services
    allowed = json.loads(services["coordinator"]["environment"]["AMITY_ALLOWED_HOSTS"])
    assert {r["bootstrap"].split(":")[0] for r in topology["regions"]} <= set(allowed)
    assert set(topology["mesh"]["regions"]) == {r["name"] for r in topology["regions"]}


# ---- the Helm chart ------------------------------------------------------------------------------

def helm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)


def render(*args: str, kube: str = KUBERNETES_VERSIONS[-1]) -> list[dict]:
    done = helm("template", "amity", str(CHART), "--kube-version", kube, *args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_the_chart_and_its_values_parse() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "amity"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["repository"] and values["coordinator"]["port"] == 8080
    assert yaml.safe_load(FULL_VALUES.read_text())["serviceMonitor"]["enabled"] is True


@needs_helm
def test_the_chart_lints_and_refuses_to_render_without_its_secrets() -> None:
    linted = helm("lint", str(CHART), "-f", str(FULL_VALUES), "--strict")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    missing = helm("template", "amity", str(CHART), "--kube-version", KUBERNETES_VERSIONS[-1])
    assert missing.returncode != 0 and "auth.apiToken must be at least 16 characters" in missing.stderr
    own = render("--set", "auth.existingSecret=amity-credentials")
    assert "amity-auth" not in {doc["metadata"]["name"] for doc in own}


@needs_helm
@pytest.mark.parametrize("kube", KUBERNETES_VERSIONS)
def test_the_rendered_manifests_are_valid_kubernetes_objects(kube: str) -> None:
    documents = render("-f", str(FULL_VALUES), kube=kube)
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Deployment", "Job", "PodDisruptionBudget",
                     "PodDisruptionBudget", "Secret", "Secret", "Service", "ServiceMonitor"]
    for doc in documents:
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, documents)
            continue
        try:
            kubernetes_validate.validate(doc, kube, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {'/'.join(map(str, exc.path))}: {exc.message}")


def check_service_monitor(monitor: dict, documents: list[dict]) -> None:
    """The Prometheus operator's CRD is not among the Kubernetes schemas: check what the chart relies on."""
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    [service] = [d for d in documents if d["kind"] == "Service"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_kubernetes_validation_can_fail() -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                                      "spec": {"replicas": "two", "selector": {}, "template": {}}},
                                     KUBERNETES_VERSIONS[-1], strict=True)


@needs_helm
def test_the_workloads_are_probed_non_root_and_wired_to_what_the_chart_renders() -> None:
    documents = render("-f", str(FULL_VALUES))
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    [service] = [d for d in documents if d["kind"] == "Service"]
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        [container] = pod["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], "Python and the stats file need /tmp"
        assert {"livenessProbe", "readinessProbe", "startupProbe"} <= set(container)
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        for source in container["envFrom"]:
            assert ("ConfigMap", source["configMapRef"]["name"]) in by_name
        for variable in container["env"]:
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in by_name[("Secret", ref["name"])]["stringData"]
    coordinator = next(d for d in documents if d["kind"] == "Deployment" and "coordinator" in d["metadata"]["name"])
    [container] = coordinator["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert service["spec"]["selector"].items() <= coordinator["spec"]["template"]["metadata"]["labels"].items()
    mirror = next(d for d in documents if d["kind"] == "Deployment" and "mirror" in d["metadata"]["name"])
    [container] = mirror["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["exec"]["command"] == ["python", "/opt/amity/healthcheck.py"]
    config = by_name[("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])]["data"]
    assert config["AMITY_URL"] == f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    assert config["AMITY_MIRROR_STATS_FILE"].startswith("/tmp/")
    for budget in (d for d in documents if d["kind"] == "PodDisruptionBudget"):
        selected = [d for d in documents if d["kind"] == "Deployment" and budget["spec"]["selector"]["matchLabels"]
                    .items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(selected) == 1, f"{budget['metadata']['name']} covers exactly one workload"
    topology = json.loads(next(d for d in documents if d["metadata"]["name"].endswith("-topology")
                               and d["kind"] == "Secret")["stringData"]["topology.json"])
    assert [Region.model_validate({k: v for k, v in r.items() if k != "sasl_password_env"}).name
            for r in topology["regions"]] == ["us", "eu"]


# ---- Grafana and Prometheus ----------------------------------------------------------------------

def exported_metric_names() -> set[str]:
    """Every series name Amity's processes expose: the mirror's (default registry) and the coordinator's."""
    import amity.mirror.stats  # noqa: F401 - registers the mirror's metrics
    from prometheus_client import REGISTRY

    from amity.coordinator.metrics import Metrics

    names = set()
    for registry in (REGISTRY, Metrics().registry):
        for family in registry.collect():
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
            names |= {family.name + suffix for suffix in suffixes}
    return names


def queried_metrics(expression: str) -> set[str]:
    return set(re.findall(r"\bamity_[a-z0-9_]+\b", expression))


def test_the_grafana_dashboard_queries_only_metrics_amity_exports() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "amity-dashboard.json").read_text())
    exported = exported_metric_names()
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 15
    unknown = {name for e in expressions for name in queried_metrics(e)} - exported
    assert not unknown, f"the dashboard queries metrics nothing exports: {unknown}"
    queried = {name for e in expressions for name in queried_metrics(e)}
    for wanted in ("amity_mirror_dropped_total", "amity_mirror_conflicts_total", "amity_mirror_dead_lettered_total",
                   "amity_mirror_lag_seconds", "amity_link_lag_records", "amity_links"):
        assert wanted in queried, f"the dashboard shows {wanted}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_alert_rules_query_only_exported_metrics_and_say_what_happened() -> None:
    rules = [rule for group in yaml.safe_load((DEPLOY / "prometheus" / "amity-alerts.yaml").read_text())["groups"]
             for rule in group["rules"]]
    exported = exported_metric_names()
    assert len(rules) >= 8
    for rule in rules:
        assert queried_metrics(rule["expr"]) and queried_metrics(rule["expr"]) <= exported, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_the_alert_rules_select_link_states_the_coordinator_exports() -> None:
    """An alert on a state the coordinator does not export can never fire; it exports every LinkState
    (tests/integration/coordinator/test_workers_api.py). Until 2026-12-06 it exported only active and paused."""
    rules = yaml.safe_load((DEPLOY / "prometheus" / "amity-alerts.yaml").read_text())["groups"]
    selected = {state for group in rules for rule in group["rules"]
                for state in re.findall(r'amity_links\{state="([^"]+)"\}', rule["expr"])}
    assert selected, "no alert reads amity_links by state"
    assert selected <= {state.value for state in LinkState}
