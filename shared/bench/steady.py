"""The steady phase: latency probes at a fixed rate through a running mirror (or straight into one cluster).

One receiver and one sender process per direction (amity.bench.probe); the
receivers are positioned first, then the senders start together. Every
process is started here and stopped here, by its pid.
"""

import json
import select
import subprocess
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path

from amity.bench.meter import ProcessMeter
from amity.bench.probe import READY, percentile
from amity.bench.results import Latency
from amity.errors import AmityError

READY_TIMEOUT_S = 60.0
GRACE_S = 60.0


class ProbeFailed(AmityError):
    """A probe process failed, or did not get ready."""


@dataclass(frozen=True, slots=True)
class Probe:
    """Records sent into one topic and timed when they appear in another."""

    probe_id: int
    send_bootstrap: str
    send_topic: str
    receive_bootstrap: str
    receive_topic: str


def run_probes(probes: list[Probe], rate: int, duration_s: float, size: int, workdir: Path,
               meter: ProcessMeter | None) -> Latency:
    """Send `rate` records per second per probe for `duration_s`; latency over every probe's records."""
    count = max(1, int(rate * duration_s))
    workdir.mkdir(parents=True, exist_ok=True)
    started: list[subprocess.Popen] = []
    try:
        receivers = [_start(started, _receive_argv(p, count, duration_s, workdir)) for p in probes]
        for receiver in receivers:
            _wait_ready(receiver)
        cpu_before = meter.read().cpu_s if meter is not None else None
        senders = [_start(started, _send_argv(p, count, rate, size)) for p in probes]
        sent = [_result(s, duration_s * 3 + GRACE_S, "sender") for s in senders]
        received = [_result(r, duration_s + 2 * GRACE_S, "receiver") for r in receivers]
        cpu_after = meter.read().cpu_s if meter is not None else None
    finally:
        for proc in started:
            _stop(proc)
    latencies = _merged(workdir, probes)
    total_sent = sum(s["sent"] for s in sent)
    seconds = max(s["seconds"] for s in sent)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    return Latency(
        rate=total_sent / seconds if seconds else 0.0, sent=total_sent,
        received=sum(r["received"] for r in received), duplicates=sum(r["duplicates"] for r in received),
        p50_ms=percentile(latencies, 0.50) / 1000, p99_ms=percentile(latencies, 0.99) / 1000,
        max_ms=(latencies[-1] / 1000) if latencies else 0.0,
        cpu_s_per_million=cpu / total_sent * 1e6 if cpu is not None and total_sent else None,
    )


def _receive_argv(probe: Probe, count: int, duration_s: float, workdir: Path) -> list[str]:
    return [sys.executable, "-m", "amity.bench.probe", "receive", "--bootstrap", probe.receive_bootstrap,
            "--topic", probe.receive_topic, "--probe-id", str(probe.probe_id), "--count", str(count),
            "--deadline", str(duration_s + GRACE_S), "--out", str(_latency_file(workdir, probe))]


def _send_argv(probe: Probe, count: int, rate: int, size: int) -> list[str]:
    return [sys.executable, "-m", "amity.bench.probe", "send", "--bootstrap", probe.send_bootstrap,
            "--topic", probe.send_topic, "--probe-id", str(probe.probe_id), "--count", str(count),
            "--rate", str(rate), "--size", str(size)]


def _latency_file(workdir: Path, probe: Probe) -> Path:
    return workdir / f"latencies-{probe.probe_id}.u32"


def _merged(workdir: Path, probes: list[Probe]) -> list[int]:
    values = array("I")
    for probe in probes:
        values.frombytes(_latency_file(workdir, probe).read_bytes())
    return sorted(values)


def _start(started: list[subprocess.Popen], argv: list[str]) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started.append(proc)
    return proc


def _wait_ready(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
    line = proc.stdout.readline().strip() if readable else ""
    if line != READY:
        raise ProbeFailed(f"probe receiver did not get ready in {READY_TIMEOUT_S:.0f}s: {line or _stderr(proc)}")


def _result(proc: subprocess.Popen, timeout_s: float, role: str) -> dict:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ProbeFailed(f"probe {role} did not finish in {timeout_s:.0f}s") from None
    lines = out.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ProbeFailed(f"probe {role} exited with {proc.returncode}: {err.strip()[-800:]}")
    return json.loads(lines[-1])


def _stderr(proc: subprocess.Popen) -> str:
    _stop(proc)
    return (proc.stderr.read() if proc.stderr else "")[-800:]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
