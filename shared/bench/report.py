"""The results as a table: rich in the terminal, Markdown in docs/benchmarks.md, from the same rows.

Ratios are Amity over the other tool for every column, so above 1 means
more throughput, and also more latency, CPU or memory. The ceiling's
latency is the probe with no mirror (produce and consume in the destination
cluster), the floor a mirror adds its own latency to. A tool measured in
several rounds (`--rounds`) shows the median of its rounds in each column,
and the ratios are of those medians.
"""

from collections.abc import Callable
from dataclasses import dataclass
from statistics import median

from rich.table import Table

from amity.bench.results import BenchResults, RunResult, Status, Tool
from amity.bench.scenarios import BASELINE, SCENARIOS
from amity.bench.tuning import MM2_TASKS
from amity.errors import ConfigError

BEGIN = "<!-- amity-bench:results:begin -->"
END = "<!-- amity-bench:results:end -->"
COLUMNS = ("scenario", "tool", "records/s", "MB/s", "p50 ms", "p99 ms", "max ms", "CPU s / M records",
           "peak RSS MiB", "notes")
NOTE_CHARS = 160
RATIOS = ((Tool.MM2, "Amity / MM2"), (Tool.CEILING, "Amity / ceiling"))
# A resolver scenario over plain mirroring in the same run: of plain clients' keyed data, and of data written as its own.
BASELINES = tuple(dict.fromkeys(s.baseline for s in SCENARIOS.values()))
RATIO_LABELS = frozenset({label for _tool, label in RATIOS} | {f"Amity / {name}" for name in BASELINES})

Metric = Callable[[RunResult], float | None]

METRICS: tuple[tuple[Metric, str], ...] = (
    (lambda r: r.throughput.records_per_s if r.throughput else None, "{:,.0f}"),
    (lambda r: r.throughput.mb_per_s if r.throughput else None, "{:.1f}"),
    (lambda r: r.latency.p50_ms if r.latency else None, "{:.1f}"),
    (lambda r: r.latency.p99_ms if r.latency else None, "{:.1f}"),
    (lambda r: r.latency.max_ms if r.latency else None, "{:.1f}"),
    (lambda r: r.throughput.cpu_s_per_million if r.throughput else None, "{:.1f}"),
    (lambda r: r.peak_rss_mib, "{:.0f}"),
)


@dataclass(frozen=True, slots=True)
class Summary:
    """One tool in one scenario over its rounds: the median of each metric over the rounds that went well."""

    run: RunResult  # the median round by records/s (the first round when none went well): status and notes
    values: tuple[float | None, ...]  # aligned with METRICS
    ok: int  # rounds that went well
    rounds: int
    spread: tuple[float, float] | None = None  # lowest and highest records/s of those rounds (None: none went well)


def summarise(runs: list[RunResult]) -> Summary:
    """The rounds of one tool in one scenario as one row's worth of figures."""
    ok = [run for run in runs if run.status is Status.OK]
    if not ok:
        return Summary(runs[0], tuple(metric(runs[0]) for metric, _fmt in METRICS), 0, len(runs))
    by_rate = sorted(ok, key=_rate)
    values = tuple(_median([metric(run) for run in ok]) for metric, _fmt in METRICS)
    return Summary(by_rate[(len(by_rate) - 1) // 2], values, len(ok), len(runs),
                   (_rate(by_rate[0]), _rate(by_rate[-1])))


def _rate(run: RunResult) -> float:
    """The records/s column, 0 where the run has none."""
    return METRICS[0][0](run) or 0.0


def rows(results: BenchResults) -> list[tuple[str, ...]]:
    """One row per tool (the median of its rounds), then the ratio rows of each scenario.

    A resolver scenario is also divided by the baseline scenarios of the same run (plain mirroring of plain
    clients' keyed data and of data written as its own), the comparison its throughput target is stated in.
    """
    summaries = {scenario: {tool: summarise(results.rounds_of(scenario, tool)) for tool in results.tools(scenario)}
                 for scenario in results.scenarios()}
    table: list[tuple[str, ...]] = []
    for scenario, tools in summaries.items():
        table.extend(_run_row(summary) for summary in tools.values())
        amity = tools.get(Tool.AMITY)
        ratios = [(label, tools.get(other)) for other, label in RATIOS]
        if _resolves(scenario):
            ratios.extend((f"Amity / {name}", summaries.get(name, {}).get(Tool.AMITY))
                          for name in _baselines_of(scenario))
        for label, other in ratios:
            row = _ratio_row(scenario, label, amity, other)
            if row is not None:
                table.append(row)
    return table


def _resolves(scenario: str) -> bool:
    """Whether `scenario` mirrors under a conflict rule that decides (not the baselines' policy none)."""
    known = SCENARIOS.get(scenario)
    return known is not None and known.resolver not in (None, "none")


def _baselines_of(scenario: str) -> tuple[str, ...]:
    """The plain-mirroring scenarios a resolver scenario is divided by: BASELINE, and its own if another."""
    return tuple(dict.fromkeys((BASELINE, SCENARIOS[scenario].baseline)))


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return median(known) if known else None


def ratio(amity: float | None, other: float | None) -> str:
    """`amity / other` as 1.23×, or a dash when either is missing or the divisor is zero."""
    if amity is None or other is None or other == 0:
        return "—"
    return f"{amity / other:.2f}×"


def _run_row(summary: Summary) -> tuple[str, ...]:
    cells = [_format(value, fmt) for value, (_metric, fmt) in zip(summary.values, METRICS)]
    run = summary.run
    return (run.scenario, run.tool.value, *cells, _short("; ".join(filter(None, (_rounds(summary), _notes(run))))))


def _rounds(summary: Summary) -> str:
    """How many rounds a row is the median of, and how far their rates spread."""
    if summary.rounds == 1:
        return ""
    if summary.ok == 0:
        return f"all {summary.rounds} rounds {summary.run.status.value}"
    low, high = summary.spread
    text = f"{summary.ok} rounds: {low:,.0f}-{high:,.0f}/s" if summary.ok > 1 else "one round"
    failed = summary.rounds - summary.ok
    return text + (f"; {failed} of {summary.rounds} rounds failed" if failed else "")


def _ratio_row(scenario: str, label: str, amity: Summary | None, other: Summary | None) -> tuple[str, ...] | None:
    if amity is None or other is None or not amity.ok or not other.ok:
        return None
    cells = [ratio(a, b) for a, b in zip(amity.values, other.values)]
    return (scenario, label, *cells, "")


def _format(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _notes(run: RunResult) -> str:
    if run.status is not Status.OK:
        first_line = run.note.strip().splitlines()[0] if run.note.strip() else ""
        return _short(f"{run.status.value}: {first_line}")
    notes = []
    if run.throughput is not None:
        if run.throughput.detail:
            notes.append(run.throughput.detail)
        if run.throughput.startup_s is not None:
            notes.append(f"startup {run.throughput.startup_s:.1f} s")
        if run.throughput.tail_s is not None and (run.throughput.tail_s >= 1 or not run.throughput.idle):
            state = "busy" if not run.throughput.idle else "idle"
            notes.append(f"{state} {run.throughput.tail_s:.1f} s after the last record")
        if run.throughput.state_cpu_s_per_million is not None:
            engine = f" ({run.config['state']})" if "state" in run.config else ""
            notes.append(f"Redis{engine} {run.throughput.state_cpu_s_per_million:.1f} CPU s / M records")
        if run.throughput.withheld:
            notes.append(f"{run.throughput.withheld:,} stale versions not written")
        if run.counts.get("conflicts.detected"):
            notes.append(f"{run.counts['conflicts.detected']:,} conflicts detected")
        if run.throughput.records + run.throughput.withheld != run.throughput.expected:
            notes.append(f"{run.throughput.records + run.throughput.withheld:,} of {run.throughput.expected:,} records")
    if run.latency is not None and run.latency.received != run.latency.sent:
        notes.append(f"probe got {run.latency.received:,} of {run.latency.sent:,}")
    return _short("; ".join(notes))


def _short(text: str) -> str:
    return text if len(text) <= NOTE_CHARS else text[:NOTE_CHARS - 1] + "…"


def rich_table(results: BenchResults) -> Table:
    grid = Table(title=f"amity bench: {results.options.records:,} records of {results.options.record_size} bytes, "
                       f"probe {results.options.rate:,}/s per direction", title_justify="left")
    for column in COLUMNS:
        grid.add_column(column, justify="left" if column in ("scenario", "tool", "notes") else "right")
    previous = None
    for row in rows(results):
        if previous is not None and row[0] != previous:
            grid.add_section()
        previous = row[0]
        style = "dim" if row[1] in RATIO_LABELS else None
        grid.add_row(*row, style=style)
    return grid


def markdown(results: BenchResults) -> str:
    """The docs section: how and where it was measured, then the table."""
    m, o = results.machine, results.options
    lines = [
        f"Measured {results.started_at:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        results.command,
        "```",
        "",
        f"- Machine: {m.nproc} × {m.cpu_model}, {m.memory_gib} GiB memory, Linux {m.kernel}, "
        f"Python {m.python}, {m.java}, Apache Kafka {m.kafka}.",
        f"- Load: {_load(results)}.",
    ]
    if results.conditions:
        lines.append(f"- Conditions: {results.conditions}")
    lines += [
        f"- Data: {o.records:,} records of {o.record_size} bytes over {o.partitions} partitions per source region; "
        f"probe {o.rate:,} records/s per direction for {o.duration_s:g} s."
        + (f" {o.rounds} rounds per scenario, the tools taking turns, each round on data of its own; a row is the "
           f"median of its tool's rounds." if o.rounds > 1 else ""),
        f"- Processes: Amity {o.amity_processes} `amity mirror run` (every link in each, partitions shared through "
        f"the consumer groups); MirrorMaker 2 one JVM with tasks.max = {MM2_TASKS}." + _placement(results),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if c in ("scenario", "tool", "notes") else "---:" for c in COLUMNS) + "|",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows(results)]
    return "\n".join(lines) + "\n"


def _placement(results: BenchResults) -> str:
    where = results.placement
    if where is None:
        return ""
    said = where.describe()
    return f" {said[0].upper()}{said[1:]} (`--state-cpus {results.options.state_cpus}`)."


def _load(results: BenchResults) -> str:
    def show(load: tuple[float, float, float] | None) -> str:
        return "unknown" if load is None else " / ".join(f"{v:.2f}" for v in load)

    return f"1/5/15-min load average {show(results.load_start)} at the start, {show(results.load_end)} at the end"


def superseded(runs: list[BenchResults]) -> list[BenchResults]:
    """The runs in order, each without the scenarios a later run measured again; runs left empty are dropped.

    A run that still shows a resolver scenario keeps its own baselines: the resolver's ratio to plain mirroring
    is only meaningful within one run.
    """
    kept = []
    for i, run in enumerate(runs):
        later = {scenario for newer in runs[i + 1:] for scenario in newer.scenarios()}
        shown = {r.scenario for r in run.runs if r.scenario not in later}
        shown.update(name for scenario in list(shown) if _resolves(scenario) for name in _baselines_of(scenario))
        remaining = [r for r in run.runs if r.scenario in shown]
        if remaining:
            kept.append(run.model_copy(update={"runs": remaining}))
    return kept


def markdown_all(runs: list[BenchResults]) -> str:
    return "\n".join(markdown(run) for run in superseded(runs))


def replace_section(document: str, section: str) -> str:
    """`document` with the text between the result markers replaced by `section`."""
    begin, end = document.find(BEGIN), document.find(END)
    if begin < 0 or end < begin:
        raise ConfigError(f"the benchmarks page has no {BEGIN} … {END} section to rewrite; restore the markers")
    return document[:begin + len(BEGIN)] + "\n" + section + document[end:]
