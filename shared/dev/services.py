"""Amity's own long-running processes started by `amity demo`: the coordinator and mirror workers.

Like the regions, each is recorded with its pid and a marker from its command
line (`<home>/services.json`), so `amity dev down` stops exactly these and
nothing else.
"""

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from amity.dev import processes
from amity.dev.settings import DevSettings
from amity.errors import DevEnvironmentError


@dataclass(frozen=True)
class Service:
    name: str
    pid: int
    marker: str
    log: str


class Services:
    """The services recorded under one dev home."""

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.path = settings.home / "services.json"

    def running(self, name: str) -> Service | None:
        service = self._read().get(name)
        return service if service and processes.is_ours(service.pid, service.marker) else None

    def start(self, name: str, args: list[str], marker: str, env: dict[str, str] | None = None) -> Service:
        """Start `amity ARGS...` in the background unless `name` already runs; `marker` must be one of ARGS."""
        existing = self.running(name)
        if existing is not None:
            return existing
        log = self.settings.home / f"{name}.log"
        pid = processes.spawn([sys.executable, "-m", "amity.cli", *args], log, env=env)
        service = Service(name, pid, marker, str(log))
        self._write({**self._read(), name: service})
        return service

    def stop_all(self) -> list[str]:
        stopped = [f"{s.name} (pid {s.pid})" for s in self._read().values() if processes.stop(s.pid, s.marker)]
        self.path.unlink(missing_ok=True)
        return stopped

    def _read(self) -> dict[str, Service]:
        try:
            return {name: Service(**entry) for name, entry in json.loads(self.path.read_text()).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, TypeError):
            self.path.unlink()
            return {}

    def _write(self, services: dict[str, Service]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({n: asdict(s) for n, s in services.items()}, indent=2) + "\n")


def wait_healthy(url: str, service: Service, timeout_s: float = 30.0) -> None:
    """Wait for the coordinator's /healthz; a clear error with the log's tail if it never answers."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if not processes.is_ours(service.pid, service.marker):
            break
        time.sleep(0.2)
    tail = Path(service.log).read_text(errors="replace")[-1500:] if Path(service.log).exists() else ""
    raise DevEnvironmentError(f"the {service.name} did not start; its log ({service.log}) ends with:\n{tail}")
