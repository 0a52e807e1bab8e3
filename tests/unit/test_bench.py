"""The benchmark harness's pure parts: probe stamps, percentiles, perf tool output, tool configs, the report."""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.bench import ceiling, report, results, watch
from amity.bench.amity_worker import AmityMirror
from amity.bench.child import Child
from amity.bench.data import payloads
from amity.bench.meter import ProcessMeter, Reading
from amity.bench.mm2 import MirrorMaker2
from amity.bench.probe import HEADER_BYTES, PRIME, percentile, stamp, unstamp
from amity.bench.runner import BenchRunner
from amity.bench.results import (
    BenchResults, Latency, Machine, Options, RunResult, Status, Throughput, Tool,
)
from amity.bench.scenarios import BOTH_WAYS, ONE_WAY, SCENARIOS, Flow
from amity.dev.settings import DevSettings
from amity.errors import ConfigError
from amity.mirror.config import MirrorConfig
from amity.regions import Region
from amity.state import Engine

UINT64 = (1 << 64) - 1
PRODUCER_OUTPUT = ("2000 records sent, 1340.482574 records/sec (0.13 MB/sec), 153.51 ms avg latency, 1204.00 ms max "
                   "latency, 158 ms 50th, 226 ms 95th, 233 ms 99th, 251 ms 99.9th.\n")
CONSUMER_OUTPUT = ("WARN something\n2026-11-24 20:10:25:334, 2026-11-24 20:10:26:275, 0.1907, 0.2027, 2000, 2125.3985, "
                   "800, 141, 1.3527, 14184.3972\n")


@given(st.integers(0, 255), st.integers(0, UINT64), st.integers(0, UINT64), st.binary(max_size=300))
def test_a_stamp_reads_back_for_its_probe_only(probe_id: int, seq: int, sent_ns: int, padding: bytes) -> None:
    value = stamp(probe_id, seq, sent_ns, padding)
    assert len(value) == HEADER_BYTES + len(padding)
    assert unstamp(value, probe_id) == (seq, sent_ns)
    assert unstamp(value, (probe_id + 1) % 256) is None


@given(st.binary(max_size=64))
def test_records_that_are_not_probe_records_are_ignored(value: bytes) -> None:
    if not value.startswith(b"AMBP"):
        assert unstamp(value, value[4] if len(value) > 4 else 0) is None
    assert unstamp(None, 1) is None


@given(st.integers(0, 255))
def test_the_senders_priming_record_is_timed_by_no_receiver(probe_id: int) -> None:
    assert unstamp(PRIME, probe_id) is None


@given(st.lists(st.integers(0, 10**9), min_size=1), st.floats(0.0, 1.0))
def test_a_percentile_is_a_sample_and_grows_with_the_fraction(values: list[int], fraction: float) -> None:
    ordered = sorted(values)
    found = percentile(ordered, fraction)
    assert found in ordered
    assert percentile(ordered, 0.0) <= found <= percentile(ordered, 1.0) == ordered[-1]


def test_nearest_rank_percentiles() -> None:
    ordered = list(range(1, 101))
    assert (percentile(ordered, 0.5), percentile(ordered, 0.99), percentile(ordered, 1.0)) == (50, 99, 100)
    assert percentile([], 0.5) == 0.0


@given(st.integers(1, 300), st.integers(1, 500), st.integers(0, 10**6))
def test_payloads_have_exactly_the_size_and_only_letters(count: int, size: int, seed: int) -> None:
    values = payloads(count, size, seed)
    assert len(values) == count
    assert all(len(v) == size and v.isalpha() and v.isupper() for v in values)


def test_perf_tool_output_is_read() -> None:
    assert ceiling.PRODUCER_SUMMARY.findall(PRODUCER_OUTPUT) == [("2000", "1340.482574")]
    row = ceiling._consumer_row(CONSUMER_OUTPUT)
    assert (row["data.consumed.in.nMsg"], row["fetch.nMsg.sec"]) == (2000, 14184.3972)


def test_perf_tool_output_without_a_result_is_an_error() -> None:
    with pytest.raises(ceiling.PerfToolError):
        ceiling._consumer_row("ERROR: no records\n")


def _mm2(flows: tuple[Flow, ...], exactly_once: bool = False) -> dict[str, str]:
    tool = MirrorMaker2(Path("/tmp"), Path("/tmp"), {"us": "127.0.0.1:1", "eu": "127.0.0.1:2"}, flows,
                        ["t", "t-probe-mm2"], exactly_once, "tag")
    return tool.properties()


def test_mm2_one_way_enables_one_flow_and_turns_off_what_others_do_not_do() -> None:
    props = _mm2(ONE_WAY)
    assert (props["us->eu.enabled"], props["eu->us.enabled"]) == ("true", "false")
    assert props["topics"] == "t, t-probe-mm2"
    assert int(props["tasks.max"]) >= 2
    for key in ("emit.heartbeats.enabled", "emit.checkpoints.enabled", "sync.group.offsets.enabled",
                "sync.topic.configs.enabled", "sync.topic.acls.enabled"):
        assert props[key] == "false"
    assert props["us.consumer.max.poll.records"] == "5000"
    assert props["eu.producer.linger.ms"] == "20"
    assert "eu.exactly.once.source.support" not in props
    assert MirrorMaker2.destination_topic(ONE_WAY[0], "t") == "us.t"


def test_mm2_both_ways_and_exactly_once() -> None:
    props = _mm2(BOTH_WAYS, exactly_once=True)
    assert (props["us->eu.enabled"], props["eu->us.enabled"]) == ("true", "true")
    assert props["eu.exactly.once.source.support"] == props["us.exactly.once.source.support"] == "enabled"
    assert props["dedicated.mode.enable.internal.rest"] == "true"
    assert props["listeners"].startswith("http://127.0.0.1:")
    assert props["eu.group.id"] == "mm2-tag" and props["eu.config.storage.topic"] == "mm2-configs.tag.internal"


@pytest.mark.parametrize("name", ["one-way", "active-active", "exactly-once"])
def test_amity_config_is_one_the_mirror_accepts(name: str) -> None:
    scenario = SCENARIOS[name]
    regions = {n: Region(name=n, bootstrap=f"127.0.0.1:{port}") for n, port in (("us", 1), ("eu", 2))}
    document = AmityMirror(Path("/tmp"), regions, scenario.flows, ["t", "t-probe-amity"],
                           scenario.exactly_once).document()
    config = MirrorConfig.model_validate(document)
    assert [link.name for link in config.running_links()] == [f.name for f in scenario.flows]
    assert all(link.selects("t") and not link.selects("t2") for link in config.links)
    assert all(link.destination_topic("t") == "t" for link in config.links)
    assert all((link.delivery.value == "exactly-once") == scenario.exactly_once for link in config.links)


@pytest.mark.parametrize("name", ["lww", "vector", "lww-from-timestamp"])
def test_amity_config_of_a_resolver_scenario_carries_its_rule(name: str) -> None:
    scenario = SCENARIOS[name]
    regions = {n: Region(name=n, bootstrap=f"127.0.0.1:{port}") for n, port in (("us", 1), ("eu", 2))}
    document = AmityMirror(Path("/tmp"), regions, scenario.flows, ["t"], scenario.exactly_once, scenario.resolver,
                           first_hop=scenario.first_hop).document()
    [rule] = MirrorConfig.model_validate(document).rules
    assert (rule.topic, rule.policy, rule.first_hop) == ("t", scenario.resolver, scenario.first_hop)


@pytest.mark.parametrize(("name", "loaded", "engine"), [("lww", True, "module"), ("lww", False, "lua"),
                                                      ("lww-lua", True, "lua"), ("vector-lua", True, "lua")])
def test_a_resolver_scenario_runs_the_state_engine_it_names_where_the_regions_have_it(
        name: str, loaded: bool, engine: str, tmp_path: Path) -> None:
    runner = BenchRunner(Options(records=10, record_size=200, partitions=1, scenarios=[name], tools=[Tool.AMITY],
                                 rate=1, duration_s=1), DevSettings(home=tmp_path), "amity bench")
    runner.state_module = loaded
    tool = runner._tool(SCENARIOS[name], Tool.AMITY, "r1", tmp_path)
    assert tool.state_engine == engine
    assert tool.config()["state"] == engine and tool.config()["worker.state_engine"] == engine


def test_amity_workers_are_started_with_the_state_engine_of_their_scenario(tmp_path: Path, monkeypatch) -> None:
    started: list[dict[str, str] | None] = []

    class Started:
        pid = 0

        def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
            started.append(env)

    monkeypatch.setattr("amity.bench.amity_worker.Child", Started)
    AmityMirror(tmp_path, {}, BOTH_WAYS, ["t"], False, "vector", processes=2, state_engine=Engine.MODULE).start()
    assert started == [{"AMITY_MIRROR_STATE_ENGINE": "module"}] * 2


def test_a_child_gets_the_variables_it_is_given_on_top_of_the_benchmarks(tmp_path: Path) -> None:
    child = Child(["sh", "-c", 'echo "$AMITY_MIRROR_STATE_ENGINE $HOME"'], tmp_path / "env.log",
                  {"AMITY_MIRROR_STATE_ENGINE": "lua"})
    child.proc.wait(10)
    assert (tmp_path / "env.log").read_text().strip() == f"lua {os.environ['HOME']}"


def test_amity_counts_are_summed_over_its_processes_stats_files(tmp_path: Path) -> None:
    tool = AmityMirror(tmp_path, {}, ONE_WAY, ["t"], False, processes=2)
    assert tool.counts() == {}
    first, second = tool.stats_paths
    first.write_text('{"report": {"topics": [{"topic": "t", "replicated": 5, "dropped": {"loop": 2}, '
                     '"conflicts": {"detected": 1, "resolved": 1, "stale": 4}}, {"replicated": 3}]}}')
    assert tool.counts() == {"replicated": 8, "conflicts.detected": 1, "conflicts.resolved": 1, "conflicts.stale": 4,
                             "dropped.loop": 2}, "a process without a report yet"
    second.write_text('{"report": {"topics": [{"topic": "t", "replicated": 1, "conflicts": {"stale": 2}}]}}')
    assert tool.counts() == {"replicated": 9, "conflicts.detected": 1, "conflicts.resolved": 1, "conflicts.stale": 6,
                             "dropped.loop": 2}
    assert tool.withheld("t") == 6


def test_the_meter_adds_up_the_trees_of_several_processes() -> None:
    spin = "import time\nwhile time.process_time() < 1: pass\ntime.sleep(60)"
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        child = ProcessMeter(busy.pid)
        deadline = time.monotonic() + 30
        while child.read().cpu_s < 0.2:
            assert time.monotonic() < deadline, "the busy child used no CPU"
            time.sleep(0.1)
        own = ProcessMeter(os.getpid()).read().cpu_s
        both = ProcessMeter([os.getpid(), busy.pid]).read().cpu_s
        # CPU times are clock ticks (0.01 s) in floats: 2.43 + 0.2 is 2.6300000000000003, above a reading of 2.63
        assert round(both - own, 6) >= 0.2
    finally:
        busy.kill()
        busy.wait()


def test_the_meter_sees_this_process_use_cpu_and_memory() -> None:
    meter = ProcessMeter(os.getpid())
    before = meter.read().cpu_s
    sum(i * i for i in range(2_000_000))
    assert meter.read().cpu_s > before
    assert meter.peak_rss_mib > 1


def _run(scenario: str, tool: Tool, per_s: float, p50: float, status: Status = Status.OK) -> RunResult:
    if status is not Status.OK:
        return RunResult(scenario=scenario, tool=tool, status=status, note="why\nmore")
    return RunResult(
        scenario=scenario, tool=tool, status=status,
        throughput=Throughput(records=100, expected=100, seconds=100 / per_s, records_per_s=per_s,
                              mb_per_s=per_s * 200 / 1e6, cpu_s_per_million=None if tool is Tool.CEILING else 10.0,
                              detail="consume 9/s" if tool is Tool.CEILING else ""),
        latency=Latency(rate=10, sent=50, received=50, p50_ms=p50, p99_ms=2 * p50, max_ms=3 * p50),
        peak_rss_mib=None if tool is Tool.CEILING else 100.0)


def _results() -> BenchResults:
    return BenchResults(
        started_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), command="amity bench --records 100",
        machine=Machine(nproc=2, cpu_model="CPU", memory_gib=24.0, kernel="6", python="3.11", java="java 17",
                        kafka="4.3.1"),
        options=Options(records=100, record_size=200, partitions=6, scenarios=["one-way", "lww"],
                        tools=list(Tool), rate=10, duration_s=5),
        load_start=(1.0, 2.0, 3.0),
        runs=[_run("one-way", Tool.CEILING, 400.0, 2.0), _run("one-way", Tool.MM2, 100.0, 8.0),
              _run("one-way", Tool.AMITY, 200.0, 4.0), _run("lww", Tool.AMITY, 0, 0, Status.SKIPPED)],
    )


def test_report_rows_carry_the_ratios_of_ok_runs_only() -> None:
    rows = report.rows(_results())
    by_tool = {(row[0], row[1]): row for row in rows}
    assert by_tool[("one-way", "Amity / MM2")][2:5] == ("2.00×", "2.00×", "0.50×")
    assert by_tool[("one-way", "Amity / ceiling")][2] == "0.50×"
    assert by_tool[("one-way", "Amity / ceiling")][7] == "—"
    assert by_tool[("lww", "amity")][-1] == "skipped: why"
    assert not any(row[0] == "lww" and "/" in row[1] for row in rows)


def test_a_resolver_scenario_is_divided_by_plain_mirroring_of_the_same_data_in_the_same_run() -> None:
    results_ = _results()
    results_.runs = [r for r in results_.runs if r.scenario == "one-way"]
    template = next(r for r in results_.runs if r.tool is Tool.AMITY)
    for scenario, per_s in (("none", 200.0), ("lww", 50.0), ("vector-stamped", 120.0)):
        results_.runs.append(template.model_copy(update={
            "scenario": scenario, "throughput": template.throughput.model_copy(update={"records_per_s": per_s})}))
    by_tool = {(row[0], row[1]): row for row in report.rows(results_)}
    assert by_tool[("lww", "Amity / none")][2] == "0.25×"
    assert by_tool[("vector-stamped", "Amity / none")][2] == "0.60×"
    assert not any(row[1] == "Amity / none" for row in by_tool.values() if row[0] in ("none", "one-way"))
    without_baseline = _results()
    without_baseline.runs = [r for r in results_.runs if r.scenario != "none"]
    assert not any(row[1] == "Amity / none" for row in report.rows(without_baseline))


def test_a_stamped_resolver_scenario_is_also_divided_by_plain_mirroring_of_stamped_data() -> None:
    """lww-stamped's records carry headers every link decodes, resolved or not: none-stamped is plain mirroring of
    such data, shown next to the none ratio; the plain-data scenarios have no such row."""
    results_ = _results()
    results_.runs = [_run("none", Tool.AMITY, 200.0, 1.0), _run("none-stamped", Tool.AMITY, 160.0, 1.0),
                     _run("lww", Tool.AMITY, 50.0, 1.0), _run("lww-stamped", Tool.AMITY, 80.0, 1.0)]
    ratios = {(row[0], row[1]): row[2] for row in report.rows(results_)}
    assert ratios[("lww-stamped", "Amity / none")] == "0.40×"
    assert ratios[("lww-stamped", "Amity / none-stamped")] == "0.50×"
    assert ratios[("lww", "Amity / none")] == "0.25×"
    assert ("lww", "Amity / none-stamped") not in ratios
    assert not any(scenario.startswith("none") and "/" in label for scenario, label in ratios)
    later = _results()
    later.runs = [_run("none", Tool.AMITY, 300.0, 1.0), _run("none-stamped", Tool.AMITY, 250.0, 1.0)]
    assert sorted(report.superseded([results_, later])[0].scenarios()) == ["lww", "lww-stamped", "none",
                                                                          "none-stamped"]


def test_stamped_plain_mirroring_data_is_stamped_as_lww_stamped_data() -> None:
    """A producer stamps nothing under policy none, so none-stamped's sources are written under lww."""
    assert SCENARIOS["none-stamped"].stamped_under == SCENARIOS["lww-stamped"].stamped_under == "lww"
    assert SCENARIOS["vector-stamped"].stamped_under == "vector"
    assert SCENARIOS["lww"].stamped_under is None


def _rounds(results_: BenchResults, tool: Tool, rates: list[float], p50s: list[float]) -> None:
    """Replace `tool`'s one-way run with one round per rate (FAILED where the rate is negative)."""
    template = next(r for r in results_.runs if r.scenario == "one-way" and r.tool is tool)
    results_.runs = [r for r in results_.runs if r is not template]
    for number, (per_s, p50) in enumerate(zip(rates, p50s), start=1):
        if per_s < 0:
            results_.runs.append(RunResult(scenario="one-way", tool=tool, status=Status.FAILED, note="broke",
                                           round=number))
            continue
        results_.runs.append(template.model_copy(update={
            "round": number,
            "throughput": template.throughput.model_copy(update={"records_per_s": per_s}),
            "latency": template.latency.model_copy(update={"p50_ms": p50})}))


def test_a_tool_measured_in_rounds_shows_the_median_of_each_column_and_the_spread() -> None:
    results_ = _results()
    _rounds(results_, Tool.AMITY, [300.0, 100.0, 200.0], [9.0, 1.0, 4.0])
    _rounds(results_, Tool.MM2, [50.0, 150.0], [2.0, 6.0])
    by_tool = {(row[0], row[1]): row for row in report.rows(results_)}
    amity, mm2 = by_tool[("one-way", "amity")], by_tool[("one-way", "mm2")]
    assert (amity[2], amity[4]) == ("200", "4.0")
    assert (mm2[2], mm2[4]) == ("100", "4.0")
    assert amity[-1].startswith("3 rounds: 100-300/s")
    assert by_tool[("one-way", "Amity / MM2")][2:5] == ("2.00×", "2.00×", "1.00×")
    assert [row[1] for row in report.rows(results_) if row[0] == "one-way"].count("amity") == 1


def test_failed_rounds_are_left_out_of_the_median_and_said() -> None:
    results_ = _results()
    _rounds(results_, Tool.AMITY, [300.0, -1, 100.0], [9.0, 0.0, 1.0])
    amity = next(row for row in report.rows(results_) if row[:2] == ("one-way", "amity"))
    assert amity[2] == "200" and amity[4] == "5.0"
    assert "1 of 3 rounds failed" in amity[-1]
    _rounds(results_, Tool.MM2, [-1, -1], [0.0, 0.0])
    rows = report.rows(results_)
    mm2 = next(row for row in rows if row[:2] == ("one-way", "mm2"))
    assert mm2[2] == "—" and mm2[-1].startswith("all 2 rounds failed")
    assert not any(row[1] == "Amity / MM2" for row in rows)
    one_left = _results()
    _rounds(one_left, Tool.AMITY, [-1, 250.0, -1], [0.0, 3.0, 0.0])
    amity = next(row for row in report.rows(one_left) if row[:2] == ("one-way", "amity"))
    assert (amity[2], amity[4]) == ("250", "3.0") and amity[-1].startswith("one round; 2 of 3 rounds failed")


def test_results_written_before_rounds_existed_still_load(tmp_path: Path) -> None:
    document = json.loads(_results().model_dump_json())
    del document["options"]["rounds"]
    for run in document["runs"]:
        del run["round"]
    (tmp_path / "old.json").write_text(json.dumps(document))
    loaded = results.load(tmp_path / "old.json")
    assert loaded.options.rounds == 1 and {run.round for run in loaded.runs} == {1}
    assert loaded == _results()


def test_ratio_of_missing_or_zero_is_a_dash() -> None:
    assert report.ratio(1.0, None) == report.ratio(None, 1.0) == report.ratio(1.0, 0.0) == "—"
    assert report.ratio(3.0, 2.0) == "1.50×"


def test_markdown_has_the_machine_the_command_and_one_table_line_per_row() -> None:
    results_ = _results()
    text = report.markdown(results_)
    assert "amity bench --records 100" in text and "2 × CPU" in text and "1.00 / 2.00 / 3.00" in text
    table = [line for line in text.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(report.rows(results_))


def test_markdown_says_where_redis_ran_when_cpus_were_set_aside_for_it() -> None:
    shared, apart = _results(), _results()
    apart.options.state_cpus = 1
    apart.placement = results.Placement(state_cpus=[1], other_cpus=[0])
    assert "alone on CPU" not in report.markdown(shared)
    assert ("The regions' Redis servers alone on CPU 1, every other process on CPU 0 (`--state-cpus 1`)."
            in report.markdown(apart))


@given(st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=50),
       st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=50), st.text(max_size=50))
def test_only_the_marked_section_is_replaced(before: str, after: str, section: str) -> None:
    document = f"{before}{report.BEGIN}\nold\n{report.END}{after}"
    replaced = report.replace_section(document, section)
    assert replaced == f"{before}{report.BEGIN}\n{section}{report.END}{after}"
    assert report.replace_section(replaced, section) == replaced


def test_a_page_without_markers_is_refused() -> None:
    with pytest.raises(ConfigError):
        report.replace_section("# Benchmarks\n", "table")


def test_results_round_trip_and_foreign_files_are_refused(tmp_path: Path) -> None:
    saved = results.save(_results(), tmp_path / "r.json")
    assert results.load(saved) == _results()
    (tmp_path / "other.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigError):
        results.load(tmp_path / "other.json")
    with pytest.raises(ConfigError):
        results.load(tmp_path / "missing.json")


def test_the_published_page_has_its_markers() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    assert report.replace_section(page.read_text(), "x")


def test_a_later_run_of_a_scenario_replaces_it_in_earlier_runs() -> None:
    first, second = _results(), _results()
    second.runs = [r for r in second.runs if r.scenario == "lww"]
    shown = report.superseded([first, second])
    assert [run.scenarios() for run in shown] == [["one-way"], ["lww"]]
    assert report.superseded([second, first]) == [first]
    text = report.markdown_all([first, second])
    assert text.count("Measured ") == 2 and text.count("| lww |") == 1


def test_an_earlier_run_showing_a_resolver_scenario_keeps_its_own_baseline() -> None:
    """Its `Amity / none` row divides by plain mirroring of the same run, even when a later run measured none."""
    first, second = _results(), _results()
    first.runs = [*first.runs, _run("none", Tool.AMITY, 100.0, 1.0), _run("lww-stamped", Tool.AMITY, 40.0, 1.0)]
    second.runs = [_run("none", Tool.AMITY, 300.0, 1.0), _run("lww", Tool.AMITY, 90.0, 1.0)]
    shown = report.superseded([first, second])
    assert [sorted(run.scenarios()) for run in shown] == [["lww-stamped", "none", "one-way"], ["lww", "none"]]
    ratios = {(row[0], row[1]): row[2] for row in report.rows(shown[0])}
    assert ratios[("lww-stamped", "Amity / none")] == "0.40×"
    assert {(row[0], row[1]): row[2] for row in report.rows(shown[1])}[("lww", "Amity / none")] == "0.30×"


class _Busy:
    """A meter whose process works for `busy` readings, one CPU second each, then idles."""

    def __init__(self, busy: int) -> None:
        self.busy, self.cpu = busy, 0.0

    def read(self) -> Reading:
        if self.busy:
            self.busy -= 1
            self.cpu += 1.0
        return Reading(self.cpu, 0)


def test_idle_is_found_where_the_cpu_stops_growing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "IDLE_POLL_S", 0.01)
    monkeypatch.setattr(watch, "IDLE_WINDOW_S", 0.05)
    idle = watch.wait_idle(_Busy(5), lambda: True, timeout_s=5)
    assert idle.reached and idle.cpu_s == 5.0


def test_a_tool_that_never_idles_is_reported_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "IDLE_POLL_S", 0.01)
    monkeypatch.setattr(watch, "IDLE_WINDOW_S", 0.05)
    idle = watch.wait_idle(_Busy(10**9), lambda: True, timeout_s=0.2)
    assert not idle.reached and idle.cpu_s > 5


def test_a_child_is_alive_from_its_start_and_gone_after_stop(tmp_path: Path) -> None:
    child = Child(["sleep", "30"], tmp_path / "sleep.log")
    assert child.alive()
    assert child.stop(timeout_s=10) == -15
    assert not child.alive()


def test_a_resolver_run_notes_the_version_states_redis_cpu_apart_from_the_tools() -> None:
    throughput = Throughput(records=80, withheld=20, expected=100, seconds=1.0, records_per_s=100.0, mb_per_s=0.02,
                            cpu_s_per_million=30.0, state_cpu_s_per_million=12.34)
    run = RunResult(scenario="lww", tool=Tool.AMITY, status=Status.OK, throughput=throughput)
    notes = report.rows(BenchResults(**{**_results().model_dump(), "runs": [run]}))[0][-1]
    assert "Redis 12.3 CPU s / M records" in notes and "20 stale versions not written" in notes


def test_a_resolver_run_names_the_state_engine_its_redis_cpu_was_spent_on() -> None:
    throughput = Throughput(records=100, expected=100, seconds=1.0, records_per_s=100.0, mb_per_s=0.02,
                            state_cpu_s_per_million=1.25)
    run = RunResult(scenario="lww", tool=Tool.AMITY, status=Status.OK, throughput=throughput,
                    config={"state": "module"})
    notes = report.rows(BenchResults(**{**_results().model_dump(), "runs": [run]}))[0][-1].split("; ")
    assert "Redis (module) 1.2 CPU s / M records" in notes


def test_a_vector_run_notes_each_detected_conflict_once() -> None:
    throughput = Throughput(records=90, withheld=10, expected=100, seconds=1.0, records_per_s=90.0, mb_per_s=0.02)
    counts = {"conflicts.detected": 7, "conflicts.resolved": 7, "conflicts.stale": 10}
    run = RunResult(scenario="vector", tool=Tool.AMITY, status=Status.OK, throughput=throughput, counts=counts)
    notes = report.rows(BenchResults(**{**_results().model_dump(), "runs": [run]}))[0][-1].split("; ")
    assert "7 conflicts detected" in notes and "10 stale versions not written" in notes


def test_rounds_go_through_every_scenario_before_the_next_round(tmp_path: Path, monkeypatch) -> None:
    options = Options(records=10, record_size=200, partitions=1, scenarios=["none", "lww", "one-way"],
                      tools=[Tool.MM2, Tool.AMITY], rate=1, duration_s=1, rounds=2)
    runner = BenchRunner(options, DevSettings(home=tmp_path), "amity bench")
    written: list[tuple[str, int]] = []
    monkeypatch.setattr(runner, "_write_source", lambda scenario, tag, round_: written.append((scenario.name, round_)))
    monkeypatch.setattr(runner, "_measure", lambda scenario, tool, tag, workdir: RunResult(
        scenario=scenario.name, tool=tool, status=Status.FAILED, note=tag))
    runner._measure_all()
    assert written == [("none", 1), ("lww", 1), ("one-way", 1), ("none", 2), ("lww", 2), ("one-way", 2)]
    measured = [(run.scenario, run.tool, run.round) for run in runner.results.runs]
    assert measured == [("none", Tool.AMITY, 1), ("lww", Tool.AMITY, 1), ("one-way", Tool.MM2, 1),
                        ("one-way", Tool.AMITY, 1), ("none", Tool.AMITY, 2), ("lww", Tool.AMITY, 2),
                        ("one-way", Tool.MM2, 2), ("one-way", Tool.AMITY, 2)]
