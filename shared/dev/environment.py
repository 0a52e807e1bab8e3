"""Bring the local regions up and down, and tell what runs.

State lives in one small file per region (`<home>/<region>/region.json`)
holding the pids Amity started and the endpoints they serve. Everything else
(running or not, ports taken) is read from the machine itself, so a crash or
a hand-edited file is recovered from instead of trusted.
"""

import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import redis as redis_client
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from amity.dev import kafka, processes
from amity.dev import redis as redis_server
from amity.dev.jars import ensure_jars
from amity.dev.layout import RegionPorts, region_ports
from amity.dev.native import ensure_module
from amity.dev.settings import DevSettings
from amity.errors import DevEnvironmentError

Progress = Callable[[str], None]


@dataclass(frozen=True)
class RegionState:
    """What `up` started for one region."""

    kafka_pid: int
    redis_pid: int
    bootstrap: str
    redis: str


@dataclass(frozen=True)
class ProcessStatus:
    region: str
    role: str
    pid: int | None
    alive: bool
    endpoint: str


class DevEnvironment:
    """The set of local regions under one home directory."""

    def __init__(self, settings: DevSettings, progress: Progress = lambda message: None) -> None:
        self.settings = settings
        self.progress = progress
        self._module: Path | None = None  # the amitystate module the regions' Redis load, once `up` built it

    def up(self, regions: list[str]) -> dict[str, RegionState]:
        """Start every named region that is not already running; a no-op for those that are."""
        to_start = [r for r in regions if not self._running(r)]
        for region in to_start:
            self._clear_stale(region)
            self._check_ports_free(region)
        if to_start:
            ensure_jars(self.settings.jar_dir, self.settings.pom, self._maven_progress)
            self._module = ensure_module(self.settings.module_path) if self.settings.state_module else None
            self._start(to_start)
        states = self._states()
        self._write_regions_file(states)
        return {r: states[r] for r in regions}

    def down(self) -> list[str]:
        """Stop every process this environment started, by pid; returns what was stopped."""
        stopped = []
        for region, state in self._states(include_dead=True).items():
            region_dir = self.settings.region_dir(region)
            if processes.stop(state.kafka_pid, self._kafka_marker(region)):
                stopped.append(f"{region} kafka (pid {state.kafka_pid})")
            if processes.stop(state.redis_pid, self._redis_marker(region)):
                stopped.append(f"{region} redis (pid {state.redis_pid})")
            (region_dir / "region.json").unlink(missing_ok=True)
        self.settings.regions_file.unlink(missing_ok=True)
        return stopped

    def status(self) -> list[ProcessStatus]:
        rows = []
        for region, state in self._states(include_dead=True).items():
            rows.append(ProcessStatus(region, "kafka", state.kafka_pid,
                                      processes.is_ours(state.kafka_pid, self._kafka_marker(region)), state.bootstrap))
            rows.append(ProcessStatus(region, "redis", state.redis_pid,
                                      processes.is_ours(state.redis_pid, self._redis_marker(region)), state.redis))
        return rows

    def log_path(self, region: str, role: str = "kafka") -> Path:
        path = self.settings.region_dir(region) / f"{role}.log"
        if not path.exists():
            raise DevEnvironmentError(f"no {role} log for region {region!r} under {self.settings.home}: was it ever started?")
        return path

    def _ports(self, region: str) -> RegionPorts:
        return region_ports(region, self.settings.base_port)

    def _kafka_marker(self, region: str) -> str:
        return str(self.settings.region_dir(region) / "server.properties")

    def _redis_marker(self, region: str) -> str:
        return str(self.settings.region_dir(region) / "redis.conf")

    def _read_state(self, region: str) -> RegionState | None:
        """The region's recorded pids, None when there is no file; corrupt files raise."""
        path = self.settings.region_dir(region) / "region.json"
        if not path.exists():
            return None
        try:
            return RegionState(**json.loads(path.read_text()))
        except (ValueError, TypeError) as exc:
            raise CorruptState(path, exc) from None

    def _states(self, include_dead: bool = False) -> dict[str, RegionState]:
        states = {}
        home = self.settings.home
        for path in sorted(home.glob("*/region.json")) if home.exists() else []:
            region = path.parent.name
            try:
                state = self._read_state(region)
            except CorruptState:
                continue
            if state and (include_dead or self._running(region)):
                states[region] = state
        return states

    def _running(self, region: str) -> bool:
        try:
            state = self._read_state(region)
        except CorruptState:
            return False
        return bool(state) and processes.is_ours(state.kafka_pid, self._kafka_marker(region)) and \
            processes.is_ours(state.redis_pid, self._redis_marker(region))

    def _clear_stale(self, region: str) -> None:
        """Forget a half-dead region: stop whichever of its processes survived, then drop its state file."""
        path = self.settings.region_dir(region) / "region.json"
        try:
            state = self._read_state(region)
        except CorruptState as exc:
            self.progress(f"{region}: {exc}; recovering from the machine's state")
            path.unlink()
            return
        if state is None:
            return
        processes.stop(state.kafka_pid, self._kafka_marker(region))
        processes.stop(state.redis_pid, self._redis_marker(region))
        path.unlink()
        self.progress(f"{region}: cleared a stale state from a previous run (pids {state.kafka_pid}, {state.redis_pid})")

    def _check_ports_free(self, region: str) -> None:
        ports = self._ports(region)
        for role, port in (("Kafka", ports.kafka), ("Kafka controller", ports.controller), ("Redis", ports.redis)):
            if processes.port_in_use(port):
                raise DevEnvironmentError(
                    f"port {port} ({role} of region {region}) is already in use by a process Amity did not start "
                    f"here: stop it, or choose other ports with AMITY_DEV_BASE_PORT (now {self.settings.base_port})"
                )

    def _maven_progress(self, line: str) -> None:
        if "Downloading from" in line or "Copying" in line:
            self.progress("fetching Kafka jars: " + line.rsplit("/", 1)[-1])

    def _start(self, regions: list[str]) -> None:
        started: list[str] = []
        try:
            with ThreadPoolExecutor(max_workers=len(regions)) as pool:
                for region in pool.map(self._start_region, regions):
                    started.append(region)
            self._wait_ready(regions)
        except BaseException:
            for region in regions:
                self._clear_stale(region)
            raise

    def _start_region(self, region: str) -> str:
        region_dir = self.settings.region_dir(region)
        ports = self._ports(region)
        config = kafka.write_config(region_dir, ports)
        if not kafka.is_formatted(region_dir):
            self.progress(f"{region}: formatting Kafka storage")
            result = subprocess.run(kafka.format_argv(self.settings.jar_dir, config),
                                    capture_output=True, text=True, timeout=120)
            if result.returncode != 0:
                raise DevEnvironmentError(f"{region}: formatting Kafka storage failed: {result.stdout[-800:]}{result.stderr[-800:]}")
        redis_config = redis_server.write_config(region_dir, ports, self._module)
        self.progress(f"{region}: starting Kafka on {ports.bootstrap} and Redis on {ports.redis}")
        kafka_pid = processes.spawn(kafka.broker_argv(self.settings.jar_dir, region_dir, self.settings.kafka_heap_mb),
                                    region_dir / "kafka.log")
        redis_pid = processes.spawn(redis_server.server_argv(redis_config), region_dir / "redis.log")
        state = RegionState(kafka_pid, redis_pid, ports.bootstrap, ports.redis_url)
        (region_dir / "region.json").write_text(json.dumps(asdict(state), indent=2) + "\n")
        return region

    def _wait_ready(self, regions: list[str]) -> None:
        deadline = time.monotonic() + self.settings.start_timeout_s
        pending = set(regions)
        while pending:
            for region in sorted(pending):
                if self._ready(region):
                    pending.discard(region)
                    self.progress(f"{region}: ready")
            if pending and time.monotonic() > deadline:
                logs = ", ".join(str(self.settings.region_dir(r) / "kafka.log") for r in sorted(pending))
                raise DevEnvironmentError(f"regions {sorted(pending)} not ready after {self.settings.start_timeout_s:.0f}s; see {logs}")
            time.sleep(0.3)

    def _ready(self, region: str) -> bool:
        state = self._read_state(region)
        assert state is not None
        for pid, role in ((state.kafka_pid, "kafka"), (state.redis_pid, "redis")):
            if processes.has_exited(pid):
                log = self.settings.region_dir(region) / f"{role}.log"
                tail = log.read_text(errors="replace").strip().splitlines()[-5:] if log.exists() else []
                raise DevEnvironmentError(f"{region}: {role} exited during start; last lines of {log}:\n" + "\n".join(tail))
        return (_redis_answers(state.redis) and _kafka_answers(state.bootstrap)
                and _gives_producer_ids(state.bootstrap))

    def _write_regions_file(self, states: dict[str, RegionState]) -> None:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        payload = {r: {"bootstrap": s.bootstrap, "redis": s.redis} for r, s in sorted(states.items())}
        self.settings.regions_file.write_text(json.dumps(payload, indent=2) + "\n")


class CorruptState(DevEnvironmentError):
    def __init__(self, path: Path, cause: Exception) -> None:
        super().__init__(f"state file {path} is unreadable ({cause})")


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis_client.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis_client.RedisError:
        return False


def _kafka_answers(bootstrap: str) -> bool:
    if not processes.port_in_use(int(bootstrap.rsplit(":", 1)[1])):
        return False
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000})
    try:
        metadata = admin.list_topics(timeout=2)
    except Exception:  # noqa: BLE001 - librdkafka raises KafkaException subclasses or a plain timeout; all mean "not yet"
        return False
    return metadata.controller_id >= 0 and bool(metadata.brokers)


def _gives_producer_ids(bootstrap: str, timeout_s: float = 2.0) -> bool:
    """Whether the broker hands out producer ids yet.

    A broker answers metadata before it can: until then it refuses every idempotent producer ("Coordinator
    load in progress"), which retries and logs a warning on the terminal of whatever started writing first.
    """
    found: dict = {}
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "log_level": 0,
                         "statistics.interval.ms": 100, "stats_cb": lambda raw: found.update(json.loads(raw))})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        producer.poll(0.1)
        if found.get("eos", {}).get("idemp_state") == "Assigned":
            return True
    return False
