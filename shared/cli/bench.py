"""`amity bench`: Amity's mirror against MirrorMaker 2 and the clusters' ceiling, on local regions.

docs/benchmarks.md describes the method; `--write-docs` rewrites its table
from a results JSON (this run's, or one named with --results).
"""

import shlex
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn,
)

from amity.bench.scenarios import SCENARIOS
from amity.bench.tuning import MM2_TASKS
from amity.cli.output import console, fail, show, user_errors

class RichProgress:
    """The run's steps as a live progress display; each finished step and every note stays printed above it."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def step(self, description: str, total: int | None = None) -> None:
        self._finish()
        self.task = self.progress.add_task(description, total=total)

    def update(self, done: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[dim]… {message}[/]", highlight=False, soft_wrap=True)

    def _finish(self) -> None:
        if self.task is None:
            return
        task = next(t for t in self.progress.tasks if t.id == self.task)
        self.progress.console.print(f"[green]✓[/] {task.description} [dim]({task.elapsed or 0:.1f}s)[/]",
                                    highlight=False, soft_wrap=True)
        self.progress.remove_task(self.task)
        self.task = None


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the run still stops every process it started."""
    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def bench(
    records: Annotated[int, typer.Option(help="Records per source region in each scenario's backlog.")] = 1_000_000,
    record_size: Annotated[int, typer.Option(help="Value bytes per record.")] = 200,
    partitions: Annotated[int, typer.Option(help="Partitions of every topic.")] = 6,
    scenarios: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(SCENARIOS)}.")] = ",".join(SCENARIOS),
    tools: Annotated[str, typer.Option(help="Comma-separated: ceiling, mm2, amity.")] = "ceiling,mm2,amity",
    rate: Annotated[int, typer.Option(help="Latency probe: records per second per direction.")] = 2000,
    duration: Annotated[float, typer.Option(help="Latency probe: seconds of steady load.")] = 30.0,
    amity_processes: Annotated[int, typer.Option(
        help=f"Amity worker processes per scenario (they share each link's partitions); MirrorMaker 2 runs "
             f"tasks.max = {MM2_TASKS}.")] = MM2_TASKS,
    rounds: Annotated[int, typer.Option(
        help="Runs of each tool per scenario, taking turns on fresh data; the table shows the medians.")] = 1,
    state_cpus: Annotated[int, typer.Option(
        help="CPUs to set aside for the regions' Redis servers, which then run there alone and every other process "
             "on the rest: the version state's work off the brokers' and mirrors' CPUs, as on a Redis host of its "
             "own. 0 shares every CPU.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the results JSON here.")] = None,
    results_files: Annotated[list[Path] | None, typer.Option(
        "--results", help="Show (and with --write-docs, publish) these results JSON files instead of running; "
                          "a scenario in a later file replaces it in earlier ones.")] = None,
    write_docs: Annotated[bool, typer.Option("--write-docs", help="Rewrite the table in docs/benchmarks.md.")] = False,
    conditions: Annotated[str, typer.Option(help="What else ran on the machine, recorded with the results.")] = "",
) -> None:
    """Measure throughput, latency, CPU and memory of each tool in each scenario, one tool at a time."""
    from amity.bench import report, results
    from amity.bench.runner import BenchRunner
    from amity.bench.settings import BenchSettings

    settings = BenchSettings()
    with user_errors():
        if results_files:
            measured = [results.load(path) for path in results_files]
        else:
            options = _options(records, record_size, partitions, scenarios, tools, rate, duration, amity_processes,
                               rounds, state_cpus)
            _stop_on_sigterm()
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as live:
                runner = BenchRunner(options, settings.dev(), _command(), out, RichProgress(live), conditions)
                measured = [runner.run()]
            console.print(f"results: {runner.results_path}" + (f" and {out}" if out else ""))
        for shown in report.superseded(measured):
            show(report.rich_table(shown))
        if write_docs:
            page = settings.docs
            page.write_text(report.replace_section(page.read_text(), report.markdown_all(measured)))
            console.print(f"rewrote the results section of {page}")


def _options(records: int, record_size: int, partitions: int, scenarios: str, tools: str, rate: int,
             duration: float, amity_processes: int, rounds: int, state_cpus: int):  # noqa: ANN202 - Options is imported lazily to keep `amity --help` fast
    from amity.bench.results import Options, Tool

    names = _split(tools)
    unknown = [name for name in names if name not in {t.value for t in Tool}]
    if unknown:
        fail(f"unknown tools {unknown}: tools are {', '.join(t.value for t in Tool)}")
    try:
        return Options(records=records, record_size=record_size, partitions=partitions, scenarios=_split(scenarios),
                       tools=[Tool(name) for name in names], rate=rate, duration_s=duration,
                       amity_processes=amity_processes, rounds=rounds, state_cpus=state_cpus)
    except ValidationError as exc:
        fail("; ".join(f"--{_flag(e['loc'])}: {e['msg']}" for e in exc.errors()))


def _flag(loc: tuple) -> str:
    name = str(loc[0]) if loc else "options"
    return {"duration_s": "duration"}.get(name, name).replace("_", "-")


def _command() -> str:
    """The command line as typed, for the results and the docs."""
    args = sys.argv[1:]
    if args[:1] == ["bench"]:
        args = args[1:]
    return " ".join(["amity bench", shlex.join(args)]).strip()


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
