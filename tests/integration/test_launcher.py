"""`amity dev`: errors are one clear line, crashes are recovered from, `down` leaves nothing."""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from amity.dev import processes
from amity.dev.settings import DevSettings
from tests.support import cluster

BASE_PORT = cluster.test_settings().base_port + 3_000  # beside the session's regions, under the ephemeral range
KAFKA_PORT = BASE_PORT + 2


def amity(home: Path, *args: str, path: str | None = None, jar_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "AMITY_DEV_HOME": str(home), "AMITY_DEV_BASE_PORT": str(BASE_PORT)}
    if path is not None:
        env["PATH"] = path
    if jar_dir is not None:
        env["AMITY_DEV_JAR_DIR"] = str(jar_dir)
    return subprocess.run([sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True, env=env,
                          timeout=180)


def assert_one_line_error(result: subprocess.CompletedProcess, needle: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert needle in result.stderr, result.stderr


def test_unknown_region_is_refused(tmp_path: Path) -> None:
    result = amity(tmp_path, "dev", "up", "--regions", "us,mars")
    assert_one_line_error(result, "unknown region 'mars'")


def test_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", KAFKA_PORT))
        squatter.listen()
        result = amity(tmp_path, "dev", "up", "--regions", "us")
    assert_one_line_error(result, f"port {KAFKA_PORT} (Kafka of region us) is already in use")
    assert not (tmp_path / "us" / "region.json").exists()


def test_missing_java_is_a_clear_error(tmp_path: Path) -> None:
    result = amity(tmp_path, "dev", "up", "--regions", "us", path=str(tmp_path / "no-bin"))
    assert_one_line_error(result, "Java is not on PATH")


def test_missing_maven_is_a_clear_error_when_jars_are_absent(tmp_path: Path) -> None:
    result = amity(tmp_path, "dev", "up", "--regions", "us", path=str(tmp_path / "no-bin"),
                   jar_dir=tmp_path / "no-jars")
    assert_one_line_error(result, "Maven (mvn) is not on PATH")


def test_crash_is_recovered_and_down_leaves_nothing(tmp_path: Path) -> None:
    assert amity(tmp_path, "dev", "up", "--regions", "us").returncode == 0
    first = json.loads((tmp_path / "us" / "region.json").read_text())
    os.kill(first["kafka_pid"], signal.SIGKILL)

    recovered = amity(tmp_path, "dev", "up", "--regions", "us")
    assert recovered.returncode == 0, recovered.stderr
    assert "cleared a stale state" in recovered.stderr
    second = json.loads((tmp_path / "us" / "region.json").read_text())
    assert second["kafka_pid"] != first["kafka_pid"]
    status = json.loads(amity(tmp_path, "dev", "status", "--json").stdout)
    assert {(row["role"], row["alive"]) for row in status} == {("kafka", True), ("redis", True)}

    again = amity(tmp_path, "dev", "up", "--regions", "us")
    assert json.loads((tmp_path / "us" / "region.json").read_text()) == second, again.stderr

    assert amity(tmp_path, "dev", "down").returncode == 0
    settings = DevSettings(home=tmp_path, base_port=BASE_PORT)
    assert not processes.is_ours(second["kafka_pid"], str(settings.region_dir("us") / "server.properties"))
    assert not processes.is_ours(second["redis_pid"], str(settings.region_dir("us") / "redis.conf"))
    assert not processes.is_ours(first["redis_pid"], str(settings.region_dir("us") / "redis.conf"))


def test_corrupt_state_file_is_recovered_when_nothing_runs(tmp_path: Path) -> None:
    (tmp_path / "us").mkdir(parents=True)
    (tmp_path / "us" / "region.json").write_text("{not json")
    try:
        result = amity(tmp_path, "dev", "up", "--regions", "us")
        assert result.returncode == 0, result.stderr
        assert "is unreadable" in result.stderr
    finally:
        amity(tmp_path, "dev", "down")


@pytest.fixture(autouse=True)
def _jars_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every launcher test reuses the jar cache the session already fetched."""
    monkeypatch.setenv("AMITY_DEV_JAR_DIR", str(DevSettings().jar_dir))
