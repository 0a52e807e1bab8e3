"""One benchmark run: its own local regions, then every scenario with every tool in turn.

The regions live under their own home and base port (never the tests' or the
demo's), start empty, and are stopped by pid at the end whatever happens. A
lock on the home keeps two runs from sharing them. Results are saved after
every tool, so an interrupted run keeps what it measured.
"""

import fcntl
import os
import shutil
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import redis
from confluent_kafka import KafkaException

from amity.bench import ceiling, data, placement, results, tuning
from amity.bench.amity_worker import AmityMirror, resolver_unavailable
from amity.bench.machine import describe
from amity.bench.meter import ProcessMeter
from amity.bench.mm2 import MirrorMaker2
from amity.bench.results import BenchResults, Latency, Options, RunResult, Status, Throughput, Tool
from amity.bench.scenarios import KEYS, PROBE_IDS, SCENARIOS, TOOL_ORDER, Flow, Scenario
from amity.bench.steady import Probe, run_probes
from amity.bench.watch import Drained, DrainWatch, Idle, Stream, wait_idle
from amity.dev.environment import DevEnvironment
from amity.dev.settings import DevSettings
from amity.errors import AmityError, ConfigError, DevEnvironmentError
from amity.regions import Region
from amity.state import MODULE_VERSION, Engine, module_version

REGIONS = ["us", "eu"]
STALL_S = 180.0
IDLE_TIMEOUT_S = 300.0
START_ATTEMPTS = 3
WARM_UP_TOPIC = "bench-warm-up"
WARM_UP_RECORDS = 1_000_000


class Progress(Protocol):
    """Where a run reports what it is doing; the CLI draws it, tests ignore it."""

    def step(self, description: str, total: int | None = None) -> None: ...

    def update(self, done: int) -> None: ...

    def note(self, message: str) -> None: ...


class Silent:
    def step(self, description: str, total: int | None = None) -> None:
        pass

    def update(self, done: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass


class MirrorTool(Protocol):
    tool: Tool
    log_path: Path

    def destination_topic(self, flow: Flow, topic: str) -> str: ...
    def start(self) -> int: ...
    def alive(self) -> bool: ...
    def stop(self) -> None: ...
    def log_tail(self, lines: int = 30) -> str: ...
    def config(self) -> dict[str, str]: ...
    def counts(self) -> dict[str, int]: ...
    def withheld(self, topic: str) -> int: ...


class BenchRunner:
    def __init__(self, options: Options, settings: DevSettings, command: str, out: Path | None = None,
                 progress: Progress | None = None, conditions: str = "") -> None:
        unknown = [s for s in options.scenarios if s not in SCENARIOS]
        if unknown:
            raise ConfigError(f"unknown scenarios {unknown}; scenarios are {', '.join(SCENARIOS)}")
        self.options = options
        self.settings = settings
        self.progress = progress or Silent()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.workdir = settings.home / "runs" / stamp
        self.results_path = settings.home / f"results-{stamp}.json"
        self.out = out
        self.results = BenchResults(started_at=datetime.now(UTC), command=command, machine=describe(),
                                    options=options, conditions=conditions, load_start=os.getloadavg())
        self.regions: dict[str, Region] = {}
        self._redis_pids: list[int] = []
        self.state_module = False  # whether every region's Redis has the amitystate module loaded

    def run(self) -> BenchResults:
        with _exclusive(self.settings.home), placement.others_apart(self.options.state_cpus) as state_cpus:
            env = DevEnvironment(self.settings, self.progress.note)
            self._fresh_regions(env)
            try:
                states = self._up(env)
                self.regions = {n: Region(name=n, bootstrap=s.bootstrap, redis=s.redis) for n, s in states.items()}
                self._redis_pids = [s.redis_pid for s in states.values()]
                self.state_module = all(_has_state_module(region) for region in self.regions.values())
                if not self.state_module:
                    self.progress.note("the regions' Redis run without the amitystate module (no C compiler?): "
                                       "every resolver scenario runs the Lua scripts")
                if state_cpus:
                    placement.move(self._redis_pids, state_cpus)
                    self.results.placement = placement.read_back(self._redis_pids)
                    self.progress.note(self.results.placement.describe())
                self._measure_all()
            finally:
                self.progress.step("stopping the benchmark regions")
                env.down()
        self.results.finished_at = datetime.now(UTC)
        self.results.load_end = os.getloadavg()
        self._save()
        return self.results

    def _up(self, env: DevEnvironment) -> dict:
        """Start the regions, again if a start fails.

        The launcher can take a server that is starting for one that exited (its /proc cmdline is empty
        for a few milliseconds after exec on this kernel), so a failed start is retried from scratch.
        """
        for _ in range(START_ATTEMPTS - 1):
            try:
                return env.up(REGIONS)
            except DevEnvironmentError as exc:
                self.progress.note(f"starting the regions failed ({str(exc).splitlines()[0]}); trying again")
                self._fresh_regions(env)
        return env.up(REGIONS)

    def _fresh_regions(self, env: DevEnvironment) -> None:
        """Stop what an interrupted run left and start from empty clusters, so no run measures another's data."""
        env.down()
        for region in REGIONS:
            shutil.rmtree(self.settings.region_dir(region), ignore_errors=True)

    def _save(self) -> None:
        results.save(self.results, self.results_path)
        if self.out is not None:
            results.save(self.results, self.out)

    def _record(self, run: RunResult) -> None:
        self.results.runs.append(run)
        self._save()
        if run.status is not Status.OK:
            self.progress.note(f"{run.scenario} / {run.tool.value}: {run.status.value}: {run.note}")

    def _measure_all(self) -> None:
        """Round after round through every scenario, not every round of one scenario and then the next.

        Scenarios are compared with each other too (a conflict rule against `none`): measured round by round,
        they sit close in time, and the host's drift over a run weighs on both alike.
        """
        self._warm_up()
        for round_ in range(1, self.options.rounds + 1):
            for name in self.options.scenarios:
                self._scenario(SCENARIOS[name], round_)

    def _warm_up(self) -> None:
        """Write and read WARM_UP_RECORDS (at most a scenario's records) in each region before measuring anything.

        Fresh brokers serve their first million records or so slower (their JIT compiler is still at work): the
        first scenario measured, `none` by default, the resolver scenarios' baseline, took 0.5-0.6 of its later
        rounds' records/s in round 1.
        """
        records = min(WARM_UP_RECORDS, self.options.records)
        for name, region in self.regions.items():
            self.progress.step(f"warming {name} up: {records:,} records written and read, not measured", records)
            data.create_topics(region.bootstrap, [WARM_UP_TOPIC], self.options.partitions)
            data.write_records(region.bootstrap, WARM_UP_TOPIC, records, self.options.record_size,
                               self.options.partitions, progress=self.progress.update)
            data.count_committed(region.bootstrap, WARM_UP_TOPIC)

    def _scenario(self, scenario: Scenario, round_: int) -> None:
        """One round of a scenario: fresh source data, then each tool in turn."""
        tools = [t for t in TOOL_ORDER if t in self.options.tools and t in scenario.tools]
        if not tools:
            return
        skip = resolver_unavailable(scenario.resolver) if scenario.resolver else None
        if skip:
            if round_ == 1:
                for tool in tools:
                    self._record(RunResult(scenario=scenario.name, tool=tool, status=Status.SKIPPED, note=skip))
            return
        # Fresh topics every round: an active-active Amity run writes its copies into the source topics.
        tag = uuid.uuid4().hex[:6]
        self._write_source(scenario, tag, round_)
        workdir = self.workdir / scenario.name / (f"round-{round_}" if self.options.rounds > 1 else "")
        for tool in tools:
            run = self._measure(scenario, tool, tag, workdir / tool.value)
            self._record(run.model_copy(update={"round": round_}))

    def _write_source(self, scenario: Scenario, tag: str, round_: int) -> None:
        topic = scenario.topic(tag)
        of_rounds = f" (round {round_} of {self.options.rounds})" if self.options.rounds > 1 else ""
        sources = [flow.source for flow in scenario.flows]
        for source in sources:
            data.create_topics(self.regions[source].bootstrap, [topic], self.options.partitions)
        if scenario.stamped_under:
            self.progress.step(f"{scenario.name}: writing {self.options.records:,} records through amity.Producer "
                               f"to each of {', '.join(sources)}{of_rounds}", self.options.records * len(sources))
            data.write_stamped_records([self.regions[source] for source in sources], topic, self.options.records,
                                       self.options.record_size, KEYS, scenario.stamped_under,
                                       progress=self.progress.update)
            return
        for source in sources:
            self.progress.step(f"{scenario.name}: writing {self.options.records:,} records to {source}{of_rounds}",
                               self.options.records)
            data.write_records(self.regions[source].bootstrap, topic, self.options.records,
                               self.options.record_size, self.options.partitions, keys=KEYS if scenario.keyed else 0,
                               progress=self.progress.update)

    def _measure(self, scenario: Scenario, tool: Tool, tag: str, workdir: Path) -> RunResult:
        try:
            if tool is Tool.CEILING:
                return self._ceiling(scenario, tag, workdir)
            return self._mirror(scenario, self._tool(scenario, tool, tag, workdir), tag, workdir)
        except (AmityError, KafkaException) as exc:
            workdir.mkdir(parents=True, exist_ok=True)
            (workdir / "error.log").write_text(traceback.format_exc())
            return RunResult(scenario=scenario.name, tool=tool, status=Status.FAILED,
                             note=f"{exc} (logs under {workdir})")

    def _tool(self, scenario: Scenario, tool: Tool, tag: str, workdir: Path) -> MirrorTool:
        topics = [scenario.topic(tag), scenario.probe_topic(tag, tool)]
        if tool is Tool.MM2:
            bootstraps = {name: region.bootstrap for name, region in self.regions.items()}
            return MirrorMaker2(workdir, self.settings.jar_dir, bootstraps, scenario.flows, topics,
                                scenario.exactly_once, f"{scenario.name}-{tag}")
        engine = Engine.MODULE if scenario.state_engine is Engine.MODULE and self.state_module else Engine.LUA
        return AmityMirror(workdir, self.regions, scenario.flows, topics, scenario.exactly_once, scenario.resolver,
                           self.options.amity_processes, scenario.first_hop, engine)

    def _ceiling(self, scenario: Scenario, tag: str, workdir: Path) -> RunResult:
        workdir.mkdir(parents=True, exist_ok=True)
        log4j = workdir / "log4j2.properties"
        log4j.write_text("rootLogger.level = warn\n")
        records, topic = self.options.records, scenario.topic(tag)
        produce_topic = f"{topic}-ceiling"
        for flow in scenario.flows:
            data.create_topics(self.regions[flow.destination].bootstrap, [produce_topic], self.options.partitions)
        jars = self.settings.jar_dir
        self.progress.step(f"{scenario.name} / ceiling: ConsumerPerformance")
        consumed = ceiling.in_parallel(*(
            (lambda f=flow: ceiling.consume(jars, log4j, self.regions[f.source].bootstrap, topic, records))
            for flow in scenario.flows))
        self.progress.step(f"{scenario.name} / ceiling: ProducerPerformance")
        produced = ceiling.in_parallel(*(
            (lambda f=flow: ceiling.produce(jars, log4j, self.regions[f.destination].bootstrap, produce_topic,
                                            records, self.options.record_size, scenario.exactly_once))
            for flow in scenario.flows))
        consume_rate = sum(r.records_per_s for r in consumed)
        produce_rate = sum(r.records_per_s for r in produced)
        rate = min(consume_rate, produce_rate)
        total = sum(r.records for r in consumed)
        throughput = Throughput(
            records=total, expected=records * len(scenario.flows), seconds=total / rate if rate else 0.0,
            records_per_s=rate, mb_per_s=rate * self.options.record_size / 1e6,
            detail=f"consume {consume_rate:,.0f}/s, produce {produce_rate:,.0f}/s",
        )
        probe_topic = scenario.probe_topic(tag, Tool.CEILING)
        probes = []
        for flow in scenario.flows:
            bootstrap = self.regions[flow.destination].bootstrap
            data.create_topics(bootstrap, [probe_topic], self.options.partitions)
            probes.append(Probe(PROBE_IDS[flow], bootstrap, probe_topic, bootstrap, probe_topic))
        latency = self._steady(scenario, Tool.CEILING, probes, workdir, None)
        return RunResult(scenario=scenario.name, tool=Tool.CEILING, status=Status.OK, throughput=throughput,
                         latency=latency, note="produce and consume straight into the clusters, no mirror",
                         config={f"producer.{k}": v for k, v in tuning.PRODUCER.items()})

    def _mirror(self, scenario: Scenario, mirror: MirrorTool, tag: str, workdir: Path) -> RunResult:
        topic, probe_topic = scenario.topic(tag), scenario.probe_topic(tag, mirror.tool)
        self._create_mirror_topics(scenario, mirror, topic, probe_topic)
        streams = [Stream(self.regions[f.destination].bootstrap, mirror.destination_topic(f, topic),
                          self.options.records) for f in scenario.flows]
        withheld = (lambda: mirror.withheld(topic)) if scenario.resolver else None
        watch = DrainWatch(streams, scenario.exactly_once, None, mirror.alive,
                           lambda done, total: self.progress.update(done), withheld)
        self.progress.step(f"{scenario.name} / {mirror.tool.value}: draining {watch.expected:,} records",
                           watch.expected)
        # Under a conflict rule Amity's work includes the version state's: the regions' Redis, metered apart from
        # launch (Redis idles while the tool starts) until the tool goes idle.
        state_meter = ProcessMeter(self._redis_pids) if scenario.resolver else None
        state_start_s = state_meter.read().cpu_s if state_meter else 0.0
        launched = time.monotonic()
        meter = ProcessMeter(mirror.start())
        watch.meter = meter
        try:
            try:
                drained = watch.run(launched, STALL_S)
            except AmityError as exc:
                raise _with_log(exc, mirror) from None
            self.progress.step(f"{scenario.name} / {mirror.tool.value}: waiting for it to go idle")
            idle = wait_idle(meter, mirror.alive, IDLE_TIMEOUT_S)
            state_cpu_s = state_meter.read().cpu_s - state_start_s if state_meter else None
            probes = [Probe(PROBE_IDS[f], self.regions[f.source].bootstrap, probe_topic,
                            self.regions[f.destination].bootstrap, mirror.destination_topic(f, probe_topic))
                      for f in scenario.flows]
            latency = self._steady(scenario, mirror.tool, probes, workdir, meter)
            meter.read()
            counts = mirror.counts()
        finally:
            mirror.stop()
        return RunResult(scenario=scenario.name, tool=mirror.tool, status=Status.OK,
                         throughput=self._throughput(drained, idle, watch.expected, state_cpu_s), latency=latency,
                         peak_rss_mib=meter.peak_rss_mib, config=mirror.config(), counts=counts)

    def _create_mirror_topics(self, scenario: Scenario, mirror: MirrorTool, topic: str, probe_topic: str) -> None:
        """The probe's source topics, and every destination topic up front, so the watch can poll them at once."""
        for flow in scenario.flows:
            data.create_topics(self.regions[flow.source].bootstrap, [probe_topic], self.options.partitions)
            data.create_topics(self.regions[flow.destination].bootstrap,
                               [mirror.destination_topic(flow, topic), mirror.destination_topic(flow, probe_topic)],
                               self.options.partitions)

    def _throughput(self, drained: Drained, idle: Idle, expected: int, state_cpu_s: float | None = None) -> Throughput:
        """Rates over the drain; CPU from its start until the tool went idle, so work after the last write counts."""
        handled = drained.records + drained.withheld
        per_s = handled / drained.seconds
        cpu = idle.cpu_s - drained.start_cpu_s if drained.start_cpu_s is not None else None
        return Throughput(
            records=drained.records, withheld=drained.withheld, expected=expected, seconds=drained.seconds,
            records_per_s=per_s, mb_per_s=per_s * self.options.record_size / 1e6, startup_s=drained.startup_s,
            tail_s=max(idle.at - drained.ended_at, 0.0), idle=idle.reached, cpu_s=cpu,
            cpu_s_per_million=cpu / handled * 1e6 if cpu is not None else None,
            state_cpu_s_per_million=state_cpu_s / handled * 1e6 if state_cpu_s is not None else None,
        )

    def _steady(self, scenario: Scenario, tool: Tool, probes: list[Probe], workdir: Path,
                meter: ProcessMeter | None) -> Latency:
        self.progress.step(f"{scenario.name} / {tool.value}: steady load, {self.options.rate:,}/s per direction "
                           f"for {self.options.duration_s:.0f}s")
        return run_probes(probes, self.options.rate, self.options.duration_s, self.options.record_size,
                          workdir / "probe", meter)


def _with_log(exc: AmityError, mirror: MirrorTool) -> AmityError:
    tail = mirror.log_tail(15)
    return type(exc)(f"{exc}; last lines of {mirror.log_path}:\n{tail}" if tail else str(exc))


@contextmanager
def _exclusive(home: Path) -> Iterator[None]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "bench.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another `amity bench` is running on {home}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _has_state_module(region: Region) -> bool:
    client = redis.Redis.from_url(region.redis)
    try:
        return module_version(client) == MODULE_VERSION
    finally:
        client.close()
