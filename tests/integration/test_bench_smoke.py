"""`amity bench`, small: every tool measured end to end on its own regions, and nothing left running.

It asserts that the figures were measured (non-zero, every record counted),
never how fast anything is: the machine is shared and its load varies.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from amity.bench import report, results
from amity.dev.settings import REPO_ROOT
from tests.support import cluster

RECORDS = 10_000
TIMEOUT_S = 180


def _bench_env(home: Path, docs: Path) -> dict[str, str]:
    """Its own home and ports: beside a test session's regions (AMITY_TEST_BASE_PORT), never on them."""
    base = cluster.test_settings().base_port + 2_000
    return {**os.environ, "AMITY_BENCH_HOME": str(home), "AMITY_BENCH_BASE_PORT": str(base),
            "AMITY_BENCH_DOCS": str(docs), "COLUMNS": "200"}


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run the CLI; on timeout SIGTERM it by pid (it then stops what it started) before failing."""
    proc = subprocess.Popen([sys.executable, "-m", "amity.cli", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
        pytest.fail(f"amity bench did not finish in {TIMEOUT_S}s:\n{out[-3000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def _ours_alive(home: Path) -> list[str]:
    """Processes whose command line names the benchmark's home: brokers, Redis, mirrors, perf tools."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(home) in cmdline and state != "Z":
            alive.append(f"{entry.name}: {cmdline[:200]}")
    return alive


def test_bench_measures_every_tool_and_stops_everything(tmp_path: Path) -> None:
    home, out, docs = tmp_path / "bench", tmp_path / "results.json", tmp_path / "benchmarks.md"
    docs.write_text((REPO_ROOT / "docs" / "benchmarks.md").read_text())
    env = _bench_env(home, docs)

    result = _run(["bench", "--records", str(RECORDS), "--record-size", "200", "--partitions", "6",
                   "--scenarios", "one-way", "--tools", "ceiling,mm2,amity", "--rate", "500", "--duration", "3",
                   "--out", str(out)], env)

    assert _ours_alive(home) == []
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Amity / MM2" in result.stdout and "Amity / ceiling" in result.stdout
    assert "warming us up: 10,000 records" in result.stdout and "warming eu up: 10,000 records" in result.stdout
    measured = json.loads(out.read_text())
    assert measured["command"].startswith("amity bench --records 10000")
    runs = {run["tool"]: run for run in measured["runs"]}
    assert set(runs) == {"ceiling", "mm2", "amity"}
    for tool, run in runs.items():
        assert run["status"] == "ok", f"{tool}: {run['note']}"
        throughput, latency = run["throughput"], run["latency"]
        assert throughput["records"] == throughput["expected"] == RECORDS, tool
        assert throughput["records_per_s"] > 0 and throughput["mb_per_s"] > 0, tool
        assert latency["sent"] == latency["received"] == 1500, tool
        assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"], tool
    for tool in ("mm2", "amity"):
        run = runs[tool]
        assert run["peak_rss_mib"] > 0, tool
        assert run["throughput"]["cpu_s_per_million"] is not None, tool
        assert run["latency"]["cpu_s_per_million"] > 0, tool
        assert run["throughput"]["startup_s"] > 0, tool
    assert "consume" in runs["ceiling"]["throughput"]["detail"]

    published = _run(["bench", "--results", str(out), "--write-docs"], env)
    assert published.returncode == 0, published.stdout[-2000:]
    page = docs.read_text()
    section = page[page.index(report.BEGIN):page.index(report.END)]
    assert "amity bench --records 10000" in section and "| one-way | Amity / MM2 |" in section


def test_bench_rounds_run_each_tool_again_on_fresh_data_and_show_the_median(tmp_path: Path) -> None:
    home, out, docs = tmp_path / "bench", tmp_path / "results.json", tmp_path / "benchmarks.md"
    env = _bench_env(home, docs)

    result = _run(["bench", "--records", "2000", "--scenarios", "one-way", "--tools", "amity", "--rate", "200",
                   "--duration", "1", "--rounds", "2", "--out", str(out)], env)

    assert _ours_alive(home) == []
    assert result.returncode == 0, result.stdout[-3000:]
    measured = json.loads(out.read_text())
    assert measured["options"]["rounds"] == 2
    assert [(run["tool"], run["round"], run["status"]) for run in measured["runs"]] == \
        [("amity", 1, "ok"), ("amity", 2, "ok")]
    for run in measured["runs"]:
        assert run["throughput"]["records"] == run["throughput"]["expected"] == 2000
    [workdir] = (home / "runs").iterdir()
    assert sorted(p.name for p in (workdir / "one-way").iterdir()) == ["round-1", "round-2"]
    rates = sorted(run["throughput"]["records_per_s"] for run in measured["runs"])
    [row] = [row for row in report.rows(results.load(out)) if row[1] == "amity"]
    median = f"{sum(rates) / 2:,.0f}"
    assert row[2] == median and row[-1].startswith(f"2 rounds: {rates[0]:,.0f}-{rates[1]:,.0f}/s")
    assert median in result.stdout and "2 rounds: " in result.stdout


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="setting a CPU aside for Redis needs two CPUs to use")
def test_bench_with_cpus_set_aside_runs_redis_alone_there(tmp_path: Path) -> None:
    home, out, docs = tmp_path / "bench", tmp_path / "results.json", tmp_path / "benchmarks.md"
    cpus = sorted(os.sched_getaffinity(0))

    result = _run(["bench", "--records", "2000", "--scenarios", "lww", "--tools", "amity", "--rate", "200",
                   "--duration", "1", "--state-cpus", "1", "--out", str(out)], _bench_env(home, docs))

    assert _ours_alive(home) == []
    assert result.returncode == 0, result.stdout[-3000:]
    measured = json.loads(out.read_text())
    assert measured["options"]["state_cpus"] == 1
    assert measured["placement"] == {"state_cpus": cpus[-1:], "other_cpus": cpus[:-1]}
    [run] = measured["runs"]
    assert run["status"] == "ok", run["note"]
    # Both regions write keys k0..k1999 once each, so how many versions lww finds stale depends on how the links
    # interleave; but of a key's two versions only the older can be withheld, so every key is written at least once.
    throughput = run["throughput"]
    assert throughput["records"] >= 2000
    assert throughput["records"] + throughput["withheld"] == throughput["expected"] == 4000
    assert throughput["state_cpu_s_per_million"] is not None
    others = ", ".join(map(str, cpus[:-1]))
    assert f"the regions' Redis servers alone on CPU {cpus[-1]}, every other process on CPU {others}" in result.stdout
