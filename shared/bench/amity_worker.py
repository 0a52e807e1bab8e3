"""Amity's mirror as the benchmark runs it: `amity mirror run --config FILE --stats-file F` subprocesses.

With more than one process, every process runs every link; each link's
consumer group spreads the source partitions over them, as replicas of a
worker would share them in production. That is how Amity uses more than one
core: a worker's links share one Python interpreter.

Links use identity naming (the same topic name in every region, Amity's
active-active mode) and Amity's default worker settings; the config file is
written in the format of amity.mirror.config.
"""

import json
import sys
from pathlib import Path

import yaml

from amity.bench.child import Child
from amity.bench.results import Tool
from amity.bench.scenarios import Flow
from amity.regions import Region
from amity.state import Engine

STOP_TIMEOUT_S = 60.0


def resolver_unavailable(policy: str) -> str | None:
    """Why the `policy` resolver scenario cannot run, None when it can.

    The hook for conflict resolution: the scenario runs when the mirror's
    config accepts `rules:` (docs/conflicts.md), with one rule of `policy` for
    the scenario's topics. The versions the resolver finds stale are not
    written; `AmityMirror.withheld` reports them so the drain still accounts
    for every source record.
    """
    from amity.mirror.config import MirrorConfig

    if "rules" not in MirrorConfig.model_fields:
        return f"the mirror config has no `rules:` yet, so the {policy} resolver cannot run"
    return None


class AmityMirror:
    """`processes` `amity mirror run` processes replicating `topics` along `flows`."""

    tool = Tool.AMITY

    def __init__(self, workdir: Path, regions: dict[str, Region], flows: tuple[Flow, ...], topics: list[str],
                 exactly_once: bool, resolver: str | None = None, processes: int = 1, first_hop: str = "state",
                 state_engine: Engine = Engine.LUA) -> None:
        self.workdir = workdir
        self.regions = regions
        self.flows = flows
        self.topics = topics
        self.exactly_once = exactly_once
        self.resolver = resolver
        self.first_hop = first_hop
        self.state_engine = state_engine  # the workers' AMITY_MIRROR_STATE_ENGINE: LUA, or MODULE where loaded
        self.config_path = workdir / "mirror.yaml"
        self.stats_paths = [workdir / f"stats-{n}.json" for n in range(processes)]
        self.log_path = workdir / "mirror.log"  # every process appends to it
        self.children: list[Child] = []

    @staticmethod
    def destination_topic(flow: Flow, topic: str) -> str:
        return topic

    def document(self) -> dict:
        links = [{"source": f.source, "destination": f.destination, "include": list(self.topics), "naming": "identity",
                  "delivery": "exactly-once" if self.exactly_once else "at-least-once"} for f in self.flows]
        document = {
            "regions": {name: {"bootstrap": r.bootstrap, "redis": r.redis} for name, r in self.regions.items()},
            "links": links,
        }
        if self.resolver is not None:
            document["rules"] = [{"topic": topic, "policy": self.resolver, "first_hop": self.first_hop}
                                 for topic in self.topics]
        return document

    def start(self) -> list[int]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.document(), sort_keys=False))
        for stats_path in self.stats_paths:
            argv = [sys.executable, "-m", "amity.cli", "mirror", "run", "--config", str(self.config_path),
                    "--stats-file", str(stats_path)]
            self.children.append(Child(argv, self.log_path, {"AMITY_MIRROR_STATE_ENGINE": str(self.state_engine)}))
        return [child.pid for child in self.children]

    def alive(self) -> bool:
        """True while every process runs: one that died would leave its partitions to the others after a pause."""
        return bool(self.children) and all(child.alive() for child in self.children)

    def stop(self) -> None:
        for child in self.children:
            child.stop(STOP_TIMEOUT_S)

    def withheld(self, topic: str) -> int:
        """Records of source `topic` the resolvers found stale and did not write, from the stats files."""
        return sum(entry.get("conflicts", {}).get("stale", 0) for entry in self._topics() if entry.get("topic") == topic)

    def counts(self) -> dict[str, int]:
        """The workers' own counters, summed over processes, links and topics, from their stats files.

        Each conflict counter stays apart (`conflicts.detected`, `conflicts.stale`, ...): a detected conflict is
        also counted resolved, so their sum would count it twice.
        """
        topics = self._topics()
        if not topics:
            return {}
        counts: dict[str, int] = {"replicated": 0}
        for entry in topics:
            counts["replicated"] += entry.get("replicated", 0)
            for prefix in ("conflicts", "dropped"):
                for name, count in entry.get(prefix, {}).items():
                    counts[f"{prefix}.{name}"] = counts.get(f"{prefix}.{name}", 0) + count
        return counts

    def _topics(self) -> list[dict]:
        """Per-topic entries of every process's last stats report (none before its first): each rewrites its file
        atomically every few seconds."""
        entries: list[dict] = []
        for stats_path in self.stats_paths:
            try:
                entries += json.loads(stats_path.read_text()).get("report", {}).get("topics", [])
            except (OSError, ValueError):
                continue
        return entries

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def config(self) -> dict[str, str]:
        """Links and worker settings, for the results file."""
        from amity.mirror.settings import MirrorSettings

        settings = MirrorSettings(state_engine=self.state_engine).model_dump(
            exclude={"stats_file", "worker_id", "metrics_port"})
        shown = {f"worker.{k}": str(v) for k, v in settings.items()}
        shown["processes"] = str(len(self.stats_paths))
        shown.update({f"link.{f.name}": f"naming=identity delivery="
                      f"{'exactly-once' if self.exactly_once else 'at-least-once'}" for f in self.flows})
        if self.resolver is not None:
            shown["rules"] = f"policy={self.resolver} first_hop={self.first_hop}"
            if self.resolver != "none":
                shown["state"] = str(self.state_engine)
        return shown
