"""A real coordinator process (uvicorn) on a free loopback port, stopped by its pid."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def coordinator_process(env: dict[str, str], log: Path, start_timeout_s: float = 30.0,
                        port: int | None = None) -> Iterator[str]:
    """`amity coordinator run` in a subprocess (on `port`, or a free one); yields its URL once /healthz answers."""
    port = port or free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMITY_")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "amity.cli", "coordinator", "run", "--port", str(port), "--log-level", "warning"],
            env={**clean, **env}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, log, start_timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the coordinator exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the coordinator did not answer /healthz within {timeout_s}s: {log.read_text()[-2000:]}")
