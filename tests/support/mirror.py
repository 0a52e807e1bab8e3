"""Mirror workers as real processes (`amity mirror run`), started and stopped by pid; `ChildProcess` for others."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Self

import yaml

from amity.regions import Region


class ChildProcess:
    """An `amity` command run as a child process, with its own folder and log (`{kind}.log`)."""

    def __init__(self, workdir: Path, kind: str, env: dict[str, str]) -> None:
        self.name = f"{kind}-{uuid.uuid4().hex[:6]}"
        self.dir = workdir / self.name
        self.dir.mkdir(parents=True)
        self.log = self.dir / f"{kind}.log"
        self.env = env
        self.proc: subprocess.Popen | None = None

    def args(self) -> list[str]:
        """The `amity` sub-command and its arguments."""
        raise NotImplementedError

    def start(self) -> Self:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "amity.cli", *self.args()],
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return self

    def stop(self, timeout_s: float = 60) -> int:
        """SIGTERM and wait; SIGKILL if it does not exit in time (then the test should fail on the code)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return -9
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


class WorkerProcess(ChildProcess):
    """One `amity mirror run` process with its own folder, log and stats file."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, "worker", {**os.environ, "AMITY_MIRROR_STATS_INTERVAL_S": "0.5",
                                             "AMITY_MIRROR_DISCOVERY_INTERVAL_S": "1", **(env or {})})
        self.stats_file = self.dir / "stats.json"

    def source_args(self) -> list[str]:
        """Where the worker's plan comes from: `--config FILE` or `--coordinator URL`."""
        raise NotImplementedError

    def args(self) -> list[str]:
        return ["mirror", "run", *self.source_args(), "--stats-file", str(self.stats_file)]

    def stats(self) -> dict:
        """The worker's last stats report, {} before the first one."""
        try:
            return json.loads(self.stats_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def link_health(self, link: str) -> dict:
        """{"link", "healthy", "problem"} of a link at the last stats report, {} before it runs."""
        links = self.stats().get("report", {}).get("links", [])
        return next((health for health in links if health["link"] == link), {})

    def wait_for_health(self, link: str, healthy: bool, timeout_s: float = 60) -> dict:
        """The link's health once its report says `healthy`."""
        return wait_for(lambda: (h := self.link_health(link)).get("healthy") is healthy and h, timeout_s=timeout_s,
                        message=f"link {link} {'healthy' if healthy else 'reported unhealthy'}")

    def topic_stats(self, link: str, topic: str) -> dict:
        for entry in self.stats().get("report", {}).get("topics", []):
            if entry["link"] == link and entry["topic"] == topic:
                return entry
        return {}


class MirrorProcess(WorkerProcess):
    """A standalone worker replicating `links` between `regions`, from a config file."""

    def __init__(self, workdir: Path, regions: dict[str, Region], links: list[dict], run: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        super().__init__(workdir, env)
        self.config = self.dir / "mirror.yaml"
        document = {"regions": {n: {"bootstrap": r.bootstrap, "redis": r.redis} for n, r in regions.items()},
                    "links": links}
        if run is not None:
            document["run"] = run
        self.config.write_text(yaml.safe_dump(document))

    def source_args(self) -> list[str]:
        return ["--config", str(self.config)]

    def add_rules(self, rules: list[dict]) -> None:
        """Conflict rules for the worker's config file (before `start`)."""
        document = yaml.safe_load(self.config.read_text())
        document["rules"] = rules
        self.config.write_text(yaml.safe_dump(document))


class CoordinatedWorker(WorkerProcess):
    """A worker that takes its links and rules from a coordinator."""

    def __init__(self, workdir: Path, url: str, token: str | None = None) -> None:
        super().__init__(workdir, {"AMITY_API_TOKEN": token} if token else None)
        self.url = url

    def source_args(self) -> list[str]:
        return ["--coordinator", self.url]


def wait_for(condition, timeout_s: float = 60.0, interval_s: float = 0.5, message: str = "condition"):
    """Poll `condition` until it returns a truthy value; that value is returned."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {message}")
        time.sleep(interval_s)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
