"""A mirror worker process that takes its links from a coordinator."""

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from tests.e2e.conftest import TOKEN


class CoordinatedWorker:
    def __init__(self, workdir: Path, url: str) -> None:
        self.dir = workdir / f"worker-{uuid.uuid4().hex[:6]}"
        self.dir.mkdir(parents=True)
        self.url = url
        self.stats_file = self.dir / "stats.json"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "CoordinatedWorker":
        env = {**os.environ, "AMITY_API_TOKEN": TOKEN, "AMITY_MIRROR_STATS_INTERVAL_S": "0.5",
               "AMITY_MIRROR_DISCOVERY_INTERVAL_S": "1"}
        with open(self.dir / "worker.log", "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "amity.cli", "mirror", "run", "--coordinator",
                                          self.url, "--stats-file", str(self.stats_file)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def stop(self, timeout_s: float = 60) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait(10)
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> dict:
        try:
            return json.loads(self.stats_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}
