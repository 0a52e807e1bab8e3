"""Apache Kafka MirrorMaker 2 in dedicated mode, as the benchmark's peer.

Run as `java ... org.apache.kafka.connect.mirror.MirrorMaker mm2.properties`
from the same jars as the regions, with a log4j2 properties config. Remote
topics use the DefaultReplicationPolicy (`<source>.<topic>`): it is MM2's
documented way both one-way and active-active (with identity names both
ways, MM2 would copy records back and forth forever). Everything that is
not replication itself and would cost the tool work the others do not do is
off: heartbeats, checkpoints, group offset sync, topic config and ACL sync.
Offset syncs (MM2's failover mechanism, written every `offset.lag.max`
records) stay on, as MM2 runs by default.

Each run gets its own Connect group and internal topics, so no run starts
from another's stored task configs or offsets.
"""

import socket
from pathlib import Path

from amity.bench import tuning
from amity.bench.child import Child
from amity.bench.results import Tool
from amity.bench.scenarios import Flow
from amity.dev.jars import classpath
from amity.dev.kafka import java

MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"
# What kafka-run-class.sh and connect-mirror-maker.sh give the JVM.
JVM = ["-Xms256m", "-Xmx2g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
       "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true"]
LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
"""
STOP_TIMEOUT_S = 30.0


class MirrorMaker2:
    """One MirrorMaker 2 process replicating `topics` along `flows`."""

    tool = Tool.MM2

    def __init__(self, workdir: Path, jar_dir: Path, bootstraps: dict[str, str], flows: tuple[Flow, ...],
                 topics: list[str], exactly_once: bool, tag: str) -> None:
        self.workdir = workdir
        self.jar_dir = jar_dir
        self.bootstraps = bootstraps
        self.flows = flows
        self.topics = topics
        self.exactly_once = exactly_once
        self.tag = tag
        self.properties_path = workdir / "mm2.properties"
        self.log_path = workdir / "mm2.log"
        self.child: Child | None = None

    @staticmethod
    def destination_topic(flow: Flow, topic: str) -> str:
        return f"{flow.source}.{topic}"

    def properties(self) -> dict[str, str]:
        aliases = sorted({end for flow in self.flows for end in (flow.source, flow.destination)})
        props = {"clusters": ", ".join(aliases)}
        for alias in aliases:
            props[f"{alias}.bootstrap.servers"] = self.bootstraps[alias]
        for source in aliases:
            for target in aliases:
                if source != target:
                    props[f"{source}->{target}.enabled"] = str(Flow(source, target) in self.flows).lower()
        props["topics"] = ", ".join(self.topics)
        props.update({
            "tasks.max": str(tuning.MM2_TASKS),
            "replication.policy.class": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
            "emit.heartbeats.enabled": "false",
            "emit.checkpoints.enabled": "false",
            "sync.group.offsets.enabled": "false",
            "refresh.groups.enabled": "false",
            "sync.topic.configs.enabled": "false",
            "sync.topic.acls.enabled": "false",
            "replication.factor": "1",
            "offset-syncs.topic.replication.factor": "1",
            "heartbeats.topic.replication.factor": "1",
            "checkpoints.topic.replication.factor": "1",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
        })
        for alias in aliases:
            props[f"{alias}.group.id"] = f"mm2-{self.tag}"
            props[f"{alias}.offset.storage.topic"] = f"mm2-offsets.{self.tag}.internal"
            props[f"{alias}.config.storage.topic"] = f"mm2-configs.{self.tag}.internal"
            props[f"{alias}.status.storage.topic"] = f"mm2-status.{self.tag}.internal"
            props.update({f"{alias}.consumer.{k}": v for k, v in tuning.CONSUMER.items()})
            props.update({f"{alias}.producer.{k}": v for k, v in tuning.PRODUCER.items()})
        if self.exactly_once:
            props.update({f"{flow.destination}.exactly.once.source.support": "enabled" for flow in self.flows})
            props["dedicated.mode.enable.internal.rest"] = "true"
            props["listeners"] = f"http://127.0.0.1:{_free_port()}"
        return props

    def start(self) -> int:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text("".join(f"{k} = {v}\n" for k, v in self.properties().items()))
        log4j = self.workdir / "log4j2.properties"
        log4j.write_text(LOG4J2)
        argv = [java(), *JVM, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath(self.jar_dir), MAIN,
                str(self.properties_path)]
        self.child = Child(argv, self.log_path)
        return self.child.pid

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def withheld(self, topic: str) -> int:
        """MirrorMaker 2 has no conflict rules: it writes every record."""
        return 0

    def counts(self) -> dict[str, int]:
        """MirrorMaker 2 reports its counters over JMX only, which this harness does not read."""
        return {}

    def config(self) -> dict[str, str]:
        """The settings that shape throughput and latency, for the results file."""
        return {k: v for k, v in self.properties().items()
                if not k.endswith((".bootstrap.servers", ".topic", ".group.id", "listeners"))}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
