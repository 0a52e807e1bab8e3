"""tilt/Tiltfile: loaded by the Starlark interpreter Tilt uses and run the way `tilt ci` runs it, on the test
session's regions (tests/support/tiltfile.py); and by the real tilt when its binary is there."""

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from amity.dev.settings import REPO_ROOT
from amity.regions import Region
from tests.support import cluster
from tests.support.kafka import unique_topic
from tests.support.tiltfile import TRIGGER_MODE_MANUAL, Tiltfile

TILTFILE = REPO_ROOT / "tilt" / "Tiltfile"
TILT = shutil.which("tilt") or str(REPO_ROOT / ".cache" / "bin" / "tilt")


def free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports nothing listens on."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


@pytest.fixture
def tilt_env(regions: dict[str, Region]) -> Iterator[dict[str, str]]:
    """The session's regions (already up, so the `regions` resource is a no-op), a coordinator of its own,
    and a mesh limited to this test's topics so that no other test's records are mirrored."""
    settings = cluster.test_settings()
    prefix = unique_topic("tilt")
    namespace = f"amity:tilt:{uuid.uuid4().hex[:10]}:"
    yield {"AMITY_DEV_HOME": str(settings.home), "AMITY_DEV_BASE_PORT": str(settings.base_port),
           "AMITY_PORT": str(free_ports(1)), "AMITY_NAMESPACE": namespace,
           "AMITY_TILT_METRICS_PORT": str(free_ports(2)), "AMITY_TILT_INCLUDE": f"{prefix}.*",
           "AMITY_TILT_SMOKE_TOPIC": f"{prefix}-smoke", "AMITY_TILT_REGIONS": "us,eu",
           "AMITY_API_TOKEN": "tilt-test-token-0123456789"}
    client = redis.Redis.from_url(regions["us"].redis)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)


def test_the_tiltfile_declares_a_live_reloading_dev_loop(tmp_path: Path) -> None:
    resources = Tiltfile(TILTFILE, {}, tmp_path).load()
    for resource in resources.values():
        assert set(resource.resource_deps) <= set(resources), f"{resource.name} depends on an unknown resource"
        for dep in resource.deps:
            assert dep.exists(), f"{resource.name} watches {dep}, which does not exist"
    assert resources["regions"].cmd.endswith("dev up --regions us,eu")
    for name, code in (("coordinator", "services/coordinator"), ("mirror-1", "services/mirror"),
                       ("mirror-2", "services/mirror")):
        served = resources[name]
        assert served.serve_cmd and served.readiness_probe, f"{name} is a probed server"
        assert REPO_ROOT / code in served.deps and REPO_ROOT / "shared" in served.deps, \
            f"{name} restarts when its code or the library changes"
    assert {"url": "http://127.0.0.1:8080/ui/", "name": "dashboard"} in resources["coordinator"].links
    assert resources["coordinator"].readiness_probe["http_get"]["path"] == "/readyz"
    assert resources["regions-down"].trigger_mode == TRIGGER_MODE_MANUAL and not resources["regions-down"].auto_init


def test_the_tiltfile_settings_come_from_the_environment(tmp_path: Path) -> None:
    resources = Tiltfile(TILTFILE, {"AMITY_PORT": "18123", "AMITY_TILT_WORKERS": "3",
                                    "AMITY_TILT_REGIONS": "us,eu,ap"}, tmp_path).load()
    assert {"mirror-1", "mirror-2", "mirror-3"} <= set(resources) and "mirror-4" not in resources
    assert resources["coordinator"].readiness_probe["http_get"]["port"] == 18123
    assert resources["regions"].cmd.endswith("--regions us,eu,ap")
    assert set(resources["smoke-check"].resource_deps) == {"mirror-1", "mirror-2", "mirror-3"}


def test_the_tiltfile_runs_like_tilt_ci_and_the_mirrors_replicate(tilt_env: dict[str, str], tmp_path: Path) -> None:
    tiltfile = Tiltfile(TILTFILE, tilt_env, tmp_path)
    tiltfile.load()
    try:
        ready = tiltfile.ci(timeout_s=90)
        assert ready[:3] == ["regions", "coordinator", "register"] and ready[-1] == "smoke-check", ready
        url = f"http://127.0.0.1:{tilt_env['AMITY_PORT']}"
        assert httpx.get(f"{url}/ui/").status_code == 200, "the dashboard link answers"
        workers = httpx.get(f"{url}/v1/workers").json()
        assert sum(worker["live"] for worker in workers) == 2
        assert "every region's smoke record arrived" in tiltfile.log("smoke-check")
    finally:
        tiltfile.stop()
    assert not tiltfile.serving


@pytest.mark.skipif(not os.access(TILT, os.X_OK), reason="no tilt binary: `make tilt` builds it from the Go module "
                    "proxy, which refuses github.com/tilt-dev/tilt on some machines (docs/dev.md)")
def test_real_tilt_ci_on_the_tiltfile(tilt_env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run([TILT, "ci", "-f", str(TILTFILE), "--port", "0", "--timeout", "3m"],
                          env={**os.environ, **tilt_env}, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
