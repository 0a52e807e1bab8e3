"""What a worker replicates: from its config file (standalone) or from the coordinator.

Both sources hand the worker the same `Plan`; the worker reconciles its running
links with each new plan. With the coordinator unreachable, the coordinator
source keeps answering "no change", so the worker goes on with its last plan.
"""

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from amity import __version__
from amity.links import Link
from amity.mirror.config import MirrorConfig
from amity.regions import Region
from amity.rules import ConflictRule
from amity.stats import StatsReport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """Regions, the whole link graph, the links to run here by id, and the conflict rules."""

    regions: dict[str, Region]
    links: list[Link]
    run: dict[str, Link]
    rules: list[ConflictRule] = field(default_factory=list)
    rules_version: int = 0


class PlanSource(Protocol):
    def poll(self, report: StatsReport) -> Plan | None:
        """A new plan, or None when nothing changed (or nothing can be learned right now)."""

    def close(self) -> None: ...


class StaticPlan:
    """The standalone worker's plan: its config file, handed over once."""

    def __init__(self, config: MirrorConfig) -> None:
        self._plan: Plan | None = Plan(config.regions, config.links,
                                       {link.name: link for link in config.running_links()}, config.rules)

    def poll(self, report: StatsReport) -> Plan | None:
        plan, self._plan = self._plan, None
        return plan

    def close(self) -> None:
        pass


class CoordinatorPlan:
    """Registers with the coordinator, heartbeats with stats, and turns assignments into plans."""

    def __init__(self, url: str, token: str | None, timeout_s: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s)
        self.worker_id: str | None = None
        self.generation: int | None = None
        self.rules_version: int | None = None
        self.heartbeat_interval_s = 2.0
        self._next_beat = 0.0
        self._unreachable_since: float | None = None

    def poll(self, report: StatsReport) -> Plan | None:
        if time.monotonic() < self._next_beat:
            return None
        self._next_beat = time.monotonic() + self.heartbeat_interval_s
        try:
            return self._beat(report)
        except (httpx.HTTPError, ValueError) as exc:
            self._unreachable(exc)
            return None

    def _beat(self, report: StatsReport) -> Plan | None:
        if self.worker_id is None:
            self._register()
        response = self.client.post(f"/v1/workers/{self.worker_id}/heartbeat",
                                    json={"generation": self.generation, "stats": report.model_dump(mode="json")})
        if response.status_code == 404:
            log.warning("coordinator forgot worker %s; registering again", self.worker_id)
            self.worker_id = None
            return None
        response.raise_for_status()
        if self._unreachable_since is not None:
            log.info("coordinator reachable again after %.0fs", time.monotonic() - self._unreachable_since)
            self._unreachable_since = None
        return self._plan(response.json())

    def _register(self) -> None:
        name = f"{socket.gethostname()}-{os.getpid()}"[:63]
        response = self.client.post("/v1/workers", json={"name": name, "version": __version__})
        response.raise_for_status()
        body = response.json()
        self.worker_id = body["worker_id"]
        self.heartbeat_interval_s = float(body["heartbeat_interval_s"])
        self.generation = None
        log.info("registered with the coordinator as worker %s", self.worker_id)

    def _plan(self, assignment: dict) -> Plan | None:
        rules = assignment["rules"]
        if assignment["generation"] == self.generation and rules["version"] == self.rules_version:
            return None
        self.generation = assignment["generation"]
        self.rules_version = rules["version"]
        regions = {}
        for entry in assignment["links"]:
            for end in ("source", "destination"):
                region = Region.model_validate(entry[end])
                regions[region.name] = region
        links = [_link(entry) for entry in assignment["all_links"]]
        run = {entry["link"]["id"]: _link(entry["link"]) for entry in assignment["links"]}
        log.info("assignment generation %d: running %s", self.generation, ", ".join(run) or "nothing")
        return Plan(regions, links, run, [ConflictRule.model_validate(r) for r in rules["rules"]], rules["version"])

    def _unreachable(self, exc: Exception) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
            log.warning("%s; running the last assignment", _why(exc))

    def close(self) -> None:
        if self.worker_id is not None:
            try:
                self.client.delete(f"/v1/workers/{self.worker_id}")
            except httpx.HTTPError as exc:
                log.warning("could not tell the coordinator this worker leaves: %s", exc)
        self.client.close()


def _why(exc: Exception) -> str:
    """A refusal (a wrong token, a report an older coordinator does not take) says what the coordinator answered;
    anything else is the coordinator out of reach."""
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        return f"coordinator refused the worker's request ({response.status_code}: {detail or response.reason_phrase})"
    return f"coordinator unreachable ({exc})"


def _link(public: dict) -> Link:
    return Link.model_validate({k: v for k, v in public.items() if k not in ("id", "updated_at", "updated_by")})
