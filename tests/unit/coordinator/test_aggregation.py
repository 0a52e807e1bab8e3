"""From cumulative worker counters to totals, rates and lag."""

from itertools import accumulate

from hypothesis import given
from hypothesis import strategies as st

from amity.coordinator.aggregation import (
    BUCKET_S,
    WINDOW_S,
    field,
    flatten,
    fold,
    gauges,
    group,
    increase,
    link_views,
    report_increases,
    topic_views,
    window,
)
from amity.stats import ConflictCounts, StatsReport, TopicStats

METRICS = ["replicated", "bytes", "dropped.loop", "conflicts.stale"]
steps = st.lists(st.fixed_dictionaries({m: st.integers(0, 50) for m in METRICS}), min_size=1, max_size=6)


def entry(flat: dict[str, int], topic: str = "orders") -> TopicStats:
    return TopicStats(link="us-to-eu", topic=topic, replicated=flat.get("replicated", 0), bytes=flat.get("bytes", 0),
                      dropped={"loop": flat["dropped.loop"]} if flat.get("dropped.loop") else {},
                      conflicts=ConflictCounts(stale=flat.get("conflicts.stale", 0)))


def cumulative(run: list[dict[str, int]]) -> list[dict[str, int]]:
    return list(accumulate(run, lambda total, step: {m: total[m] + step[m] for m in METRICS}))


@given(st.lists(steps, min_size=1, max_size=4))
def test_increases_add_up_to_every_runs_final_counters(runs: list[list[dict[str, int]]]) -> None:
    last, last_run, totals = {}, None, {m: 0 for m in METRICS}
    for number, run in enumerate(runs):
        for counters in cumulative(run):
            report = StatsReport(run_id=f"run-{number}", topics=[entry(counters)])
            for added in report_increases(last, last_run, report).values():
                for metric, count in added.items():
                    totals[metric] += count
            last, last_run = {("us-to-eu", "orders"): flatten(report.topics[0])}, report.run_id
    expected = {m: sum(cumulative(run)[-1][m] for run in runs) for m in METRICS}
    assert totals == expected


def test_a_counter_going_down_counts_as_a_restart() -> None:
    restarted = {"replicated": 3, "bytes": 300}
    assert increase({"replicated": 10, "bytes": 100}, restarted) == restarted


def test_increase_is_the_difference_within_a_run() -> None:
    assert increase({"replicated": 10}, {"replicated": 12, "bytes": 5}) == {"replicated": 2, "bytes": 5}


def test_entries_missing_from_a_report_add_nothing() -> None:
    last = {("us-to-eu", "orders"): {"replicated": 5}}
    report = StatsReport(run_id="r", topics=[TopicStats(link="us-to-eu", topic="other", replicated=1)])
    assert report_increases(last, "r", report) == {("us-to-eu", "other"): {"replicated": 1}}


def test_fields_group_back_per_topic() -> None:
    fields = {field(("us-to-eu", "orders"), "replicated"): 3, field(("us-to-eu", "orders"), "dropped.loop"): 1,
              field(("eu-to-us", "orders"), "bytes"): 9}
    assert group(fields) == {("us-to-eu", "orders"): {"replicated": 3, "dropped.loop": 1},
                             ("eu-to-us", "orders"): {"bytes": 9}}


def test_fold_builds_the_counts_model() -> None:
    counts = fold({"replicated": 2, "dropped.loop": 1, "dead_lettered.too-large": 4, "conflicts.detected": 3})
    assert counts.model_dump() == {
        "replicated": 2, "bytes": 0, "keyless": 0, "dropped": {"loop": 1}, "dead_lettered": {"too-large": 4},
        "conflicts": {"detected": 3, "resolved": 0, "stale": 0, "conflicts_topic": 0}}


@given(st.floats(min_value=1e6, max_value=1e10))
def test_window_covers_the_last_minute(now: float) -> None:
    buckets, span = window(now)
    assert WINDOW_S - BUCKET_S < span <= WINDOW_S
    assert buckets == list(range(buckets[0], buckets[0] + len(buckets)))
    assert buckets[0] * BUCKET_S >= now - WINDOW_S and buckets[-1] * BUCKET_S <= now


def test_gauges_sum_records_and_keep_the_largest_delay() -> None:
    entries = [TopicStats(link="l", topic="t", lag_records=5, lag_seconds=1.5),
               TopicStats(link="l", topic="t", lag_records=7, lag_seconds=0.5)]
    assert gauges(entries) == {("l", "t"): (12, 1.5)}


def test_views_give_rates_over_the_window_and_per_link_sums() -> None:
    totals = {("l", "a"): {"replicated": 100}, ("l", "b"): {"replicated": 50, "bytes": 10}}
    recent = {("l", "a"): {"replicated": 60, "bytes": 120}}
    lag = {("l", "b"): (4, 2.0)}
    topics = topic_views(totals, recent, lag, span_s=60.0)
    assert [(v.topic, v.total.replicated, v.throughput.records_per_s, v.lag_records) for v in topics] == \
        [("a", 100, 1.0, 0), ("b", 50, 0.0, 4)]
    [link] = link_views(totals, recent, lag, span_s=60.0)
    assert (link.topics, link.total.replicated, link.total.bytes, link.throughput.bytes_per_s, link.lag_seconds) == \
        (2, 150, 10, 2.0, 2.0)
