"""One single-node KRaft Kafka cluster (combined broker and controller) per region."""

import base64
import shutil
import uuid
from pathlib import Path

from amity.dev.jars import classpath
from amity.dev.layout import RegionPorts
from amity.errors import DevEnvironmentError

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.state.name = state.change.logger
logger.state.level = warn
"""


def server_properties(ports: RegionPorts, data_dir: Path) -> str:
    """Broker config sized for tests and demos on one machine: single replica, fast group joins."""
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{ports.controller}",
        f"listeners=PLAINTEXT://127.0.0.1:{ports.kafka},CONTROLLER://127.0.0.1:{ports.controller}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports.kafka}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={data_dir}",
        "num.partitions=1",
        # Topics are created on purpose by the mirror and by tests, never by a stray produce.
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=10",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Consumer groups start at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms=0",
        "log.flush.interval.messages=9223372036854775807",
        "num.network.threads=2",
        "num.io.threads=4",
        "",
    ])


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise DevEnvironmentError("Java is not on PATH: install a JDK 17 (apt-get install openjdk-17-jre-headless)")
    return path


def write_config(region_dir: Path, ports: RegionPorts) -> Path:
    """Write server.properties and log4j2.properties; returns the server config path."""
    region_dir.mkdir(parents=True, exist_ok=True)
    (region_dir / "log4j2.properties").write_text(LOG4J2)
    config = region_dir / "server.properties"
    config.write_text(server_properties(ports, region_dir / "kafka-data"))
    return config


def is_formatted(region_dir: Path) -> bool:
    return (region_dir / "kafka-data" / "meta.properties").exists()


def format_argv(jar_dir: Path, config: Path) -> list[str]:
    # `--cluster-id=ID` in one argument: a random id may start with "-", which the tool would read as an option.
    return [java(), "-Xmx256m", "-cp", classpath(jar_dir), "kafka.tools.StorageTool",
            "format", f"--cluster-id={new_cluster_id()}", "-c", str(config)]


def broker_argv(jar_dir: Path, region_dir: Path, heap_mb: int) -> list[str]:
    return [
        java(), f"-Xms{min(heap_mb, 256)}m", f"-Xmx{heap_mb}m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={region_dir / 'log4j2.properties'}",
        "-cp", classpath(jar_dir), "kafka.Kafka", str(region_dir / "server.properties"),
    ]
