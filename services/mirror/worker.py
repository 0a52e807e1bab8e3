"""A mirror worker: runs its links on threads, serves metrics, writes its stats report."""

import json
import logging
import threading
import uuid
from pathlib import Path

from prometheus_client import start_http_server

from amity.links import Link
from amity.mirror.config import MirrorConfig
from amity.mirror.link import LinkRunner
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.stats import StatsReport

log = logging.getLogger(__name__)


class Worker:
    """Replicates the links of one config until stopped."""

    def __init__(self, config: MirrorConfig, settings: MirrorSettings, stop: threading.Event | None = None) -> None:
        self.config = config
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:16]
        self.runners = [self._runner(link) for link in config.running_links() if not link.paused]
        self._stop = stop or threading.Event()

    def _runner(self, link: Link) -> LinkRunner:
        router = Router(link, self.config.links, list(self.config.regions), self.settings.max_hops)
        return LinkRunner(link, self.config.regions[link.source], self.config.regions[link.destination],
                          router, self.settings, LinkStats(link.name))

    def run(self) -> None:
        """Block until `stop()`, then stop every link cleanly (committing what was acknowledged)."""
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr="127.0.0.1")
        threads = [threading.Thread(target=r.run, name=f"link-{r.link.name}", daemon=True) for r in self.runners]
        for thread in threads:
            thread.start()
        log.info("worker %s: replicating %s", self.run_id, ", ".join(r.link.name for r in self.runners) or "nothing")
        while not self._stop.wait(self.settings.stats_interval_s):
            self.write_stats()
        for runner in self.runners:
            runner.stop()
        for thread in threads:
            thread.join(timeout=60)
        self.write_stats()

    def stop(self) -> None:
        self._stop.set()

    def report(self) -> StatsReport:
        return StatsReport(run_id=self.run_id, topics=[entry for r in self.runners for entry in r.stats.snapshot()])

    def health(self) -> dict[str, dict[str, object]]:
        return {r.link.name: {"healthy": r.stats.is_healthy, "problem": r.stats.problem} for r in self.runners}

    def write_stats(self) -> None:
        if self.settings.stats_file is None:
            return
        path: Path = self.settings.stats_file
        payload = {"report": self.report().model_dump(), "links": self.health()}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(path)
