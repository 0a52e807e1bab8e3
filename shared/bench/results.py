"""What a benchmark run measured, as written to and read from its results JSON.

The JSON is the only source of the figures anywhere (terminal table, tracking
files, docs/benchmarks.md), so nothing shown is ever typed in by hand.
"""

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, ValidationError

from amity.errors import ConfigError


class Tool(StrEnum):
    CEILING = "ceiling"
    MM2 = "mm2"
    AMITY = "amity"


class Status(StrEnum):
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"


class Machine(BaseModel):
    """The hardware and software the figures were measured on."""

    model_config = ConfigDict(extra="forbid")

    nproc: int
    cpu_model: str
    memory_gib: float
    kernel: str
    python: str
    java: str
    kafka: str


class Throughput(BaseModel):
    """A backlog drain: every source record copied once, timed from first to last visible in the destination."""

    model_config = ConfigDict(extra="forbid")

    records: NonNegativeInt = Field(description="Records the tool made visible in the destination")
    withheld: NonNegativeInt = Field(default=0, description="Records its conflict rule found stale and did not write")
    expected: NonNegativeInt = Field(description="Records written to the source")
    seconds: NonNegativeFloat
    records_per_s: NonNegativeFloat = Field(description="Source records handled (written or withheld) per second")
    mb_per_s: NonNegativeFloat = Field(description="Value bytes of those records per second, 10^6 bytes per MB")
    startup_s: NonNegativeFloat | None = Field(default=None, description="Process start to first record visible")
    tail_s: NonNegativeFloat | None = Field(default=None, description="Last record visible to the tool idle")
    idle: bool = Field(default=True, description="False when the tool never went idle after the drain")
    cpu_s: NonNegativeFloat | None = Field(default=None, description="CPU of the tool from the drain's start to idle")
    cpu_s_per_million: NonNegativeFloat | None = None
    state_cpu_s_per_million: NonNegativeFloat | None = Field(
        default=None, description="Under a conflict rule: CPU of the regions' Redis (Amity's version state) from "
                                  "the tool's launch until it went idle, per million records; not in cpu_s")
    detail: str = ""


class Latency(BaseModel):
    """The steady-load probe: records sent at a fixed rate, latency from send to visible in the destination."""

    model_config = ConfigDict(extra="forbid")

    rate: NonNegativeFloat = Field(description="Records per second the probe sent, all directions together")
    sent: NonNegativeInt
    received: NonNegativeInt
    duplicates: NonNegativeInt = 0
    p50_ms: NonNegativeFloat
    p99_ms: NonNegativeFloat
    max_ms: NonNegativeFloat
    cpu_s_per_million: NonNegativeFloat | None = Field(default=None, description="Tool CPU at this fixed rate")


class RunResult(BaseModel):
    """One tool in one scenario."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    tool: Tool
    status: Status
    round: int = Field(default=1, ge=1, description="Which of the scenario's rounds this run was (--rounds)")
    note: str = ""
    throughput: Throughput | None = None
    latency: Latency | None = None
    peak_rss_mib: NonNegativeFloat | None = None
    config: dict[str, str] = Field(default_factory=dict, description="Settings the tool ran with")
    counts: dict[str, int] = Field(default_factory=dict, description="The tool's own counters at the end, if it has")


class Options(BaseModel):
    """The knobs of the run, as given on the command line."""

    model_config = ConfigDict(extra="forbid")

    records: int = Field(gt=0)
    record_size: int = Field(ge=32, description="Value bytes per record; the probe needs room for its stamp")
    partitions: int = Field(gt=0)
    scenarios: list[str]
    tools: list[Tool]
    rate: int = Field(gt=0, description="Probe records per second per direction")
    duration_s: float = Field(gt=0, description="Probe duration")
    amity_processes: int = Field(default=1, ge=1, le=16, description="`amity mirror run` processes per scenario, "
                                 "sharing the links' partitions through their consumer groups")
    rounds: int = Field(default=1, ge=1, le=9, description="Runs of each tool per scenario, the scenarios and within "
                        "them the tools taking turns round after round, each round on source data of its own; a "
                        "table row is the median")
    state_cpus: int = Field(default=0, ge=0, le=64, description="CPUs the regions' Redis servers run on alone, every "
                            "other process on the rest (amity.bench.placement); 0: every process shares every CPU")


class Placement(BaseModel):
    """Which CPUs the Redis servers and every other process ran on (`--state-cpus`), read back from the kernel."""

    model_config = ConfigDict(extra="forbid")

    state_cpus: list[int]
    other_cpus: list[int]

    def describe(self) -> str:
        """As the progress display and the table's Processes line say it."""
        return (f"the regions' Redis servers alone on CPU {', '.join(map(str, self.state_cpus))}, every other process "
                f"on CPU {', '.join(map(str, self.other_cpus))}")


class BenchResults(BaseModel):
    """Everything one `amity bench` run measured."""

    model_config = ConfigDict(extra="forbid")

    started_at: datetime
    finished_at: datetime | None = None
    command: str
    machine: Machine
    options: Options
    conditions: str = Field(default="", description="What else ran on the machine, in the operator's words")
    load_start: tuple[float, float, float] | None = Field(default=None, description="1/5/15-min load average")
    load_end: tuple[float, float, float] | None = None
    placement: Placement | None = Field(default=None, description="None: every process shared every CPU")
    runs: list[RunResult] = Field(default_factory=list)

    def rounds_of(self, scenario: str, tool: Tool) -> list[RunResult]:
        return [r for r in self.runs if r.scenario == scenario and r.tool is tool]

    def tools(self, scenario: str) -> list[Tool]:
        return list(dict.fromkeys(r.tool for r in self.runs if r.scenario == scenario))

    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(r.scenario for r in self.runs))


def save(results: BenchResults, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(results.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    return path


def load(path: Path) -> BenchResults:
    """Read a results JSON; a missing or foreign file is a ConfigError naming it."""
    try:
        return BenchResults.model_validate_json(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read benchmark results {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path} is not an `amity bench` results file: {exc.errors()[0]['msg']}") from None
