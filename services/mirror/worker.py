"""A mirror worker: runs the links of its current plan on threads, serves metrics, reports stats.

The plan comes from a config file or from the coordinator (amity.mirror.plan).
Each new plan is reconciled with what runs: links no longer assigned stop
(committing what was acknowledged), new ones start, a link whose regions or
settings changed restarts, and every router learns the new link graph.
"""

import gc
import json
import logging
import threading
import uuid

from prometheus_client import start_http_server

from amity.links import Link
from amity.mirror.link import LinkRunner
from amity.mirror.plan import Plan, PlanSource
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.regions import Region
from amity.rules import RuleSet
from amity.stats import StatsReport

log = logging.getLogger(__name__)


def tune_collector(threshold: int) -> None:
    """Collect cyclic garbage every `threshold` allocations, and never scan what exists at startup.

    A batch allocates tens of thousands of short-lived objects, all freed by reference counting; at
    Python's default threshold (700) the collector ran dozens of times per batch and, as batch objects
    survived into older generations, kept traversing the whole heap. Process-wide: call it once, from the
    worker's own process.
    """
    gc.freeze()
    gc.set_threshold(threshold)


class RunningLink:
    """A runner, its thread, and what it was started with (to tell when a plan changes it)."""

    def __init__(self, runner: LinkRunner, started_with: tuple[Link, Region, Region]) -> None:
        self.runner = runner
        self.started_with = started_with
        self.thread = threading.Thread(target=runner.run, name=f"link-{runner.link.name}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=60)


class Worker:
    """Replicates whatever its plan source says, until stopped."""

    def __init__(self, source: PlanSource, settings: MirrorSettings, stop: threading.Event | None = None) -> None:
        self.source = source
        self.settings = settings
        self.run_id = uuid.uuid4().hex[:16]
        self.running: dict[str, RunningLink] = {}
        self._stop = stop or threading.Event()
        self._rules_version: int | None = None

    def run(self) -> None:
        """Block until `stop()`, then stop every link cleanly (committing what was acknowledged)."""
        if self.settings.metrics_port:
            start_http_server(self.settings.metrics_port, addr=self.settings.metrics_host)
        try:
            while True:
                plan = self.source.poll(self.report())
                if plan is not None:
                    self.apply(plan)
                self.write_stats()
                if self._stop.wait(self.settings.stats_interval_s):
                    break
        finally:
            for running in self.running.values():
                running.stop()
            self.write_stats()
            self.running.clear()
            self.source.close()

    def stop(self) -> None:
        self._stop.set()

    def apply(self, plan: Plan) -> None:
        """Make the running links match `plan`."""
        wanted = {link_id: link for link_id, link in plan.run.items() if not link.paused}
        names = sorted({end for link in plan.links for end in (link.source, link.destination)})
        for name in list(self.running):
            link = wanted.get(name)
            if link is None or self.running[name].started_with != self._ends(link, plan):
                log.info("worker %s: stopping link %s", self.run_id, name)
                self.running.pop(name).stop()
        rules = RuleSet(rules=tuple(plan.rules))
        for running in self.running.values():
            running.runner.router.relink(plan.links, names)
            if plan.rules_version != self._rules_version:
                running.runner.set_rules(rules)
        self._rules_version = plan.rules_version
        for link_id, link in wanted.items():
            if link_id not in self.running:
                log.info("worker %s: starting link %s", self.run_id, link_id)
                self.running[link_id] = self._start(link_id, link, plan, names)

    def _start(self, link_id: str, link: Link, plan: Plan, region_names: list[str]) -> RunningLink:
        router = Router(link, plan.links, region_names, self.settings.max_hops, RuleSet(rules=tuple(plan.rules)))
        source, destination = plan.regions[link.source], plan.regions[link.destination]
        runner = LinkRunner(link, source, destination, router, self.settings, LinkStats(link_id), link_id)
        return RunningLink(runner, self._ends(link, plan))

    @staticmethod
    def _ends(link: Link, plan: Plan) -> tuple[Link, Region, Region]:
        return (link, plan.regions[link.source], plan.regions[link.destination])

    def report(self) -> StatsReport:
        return StatsReport(run_id=self.run_id,
                           topics=[entry for r in self.running.values() for entry in r.runner.stats.snapshot()],
                           links=[r.runner.stats.health() for r in self.running.values()])

    def write_stats(self) -> None:
        if self.settings.stats_file is None:
            return
        payload = {"report": self.report().model_dump()}
        tmp = self.settings.stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=1))
        tmp.replace(self.settings.stats_file)
