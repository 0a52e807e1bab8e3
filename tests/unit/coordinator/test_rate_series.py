"""Chart series: rates over a window from cumulative totals, gaps nobody watched, and forgetting."""

from itertools import accumulate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.coordinator.rate_series import FIELDS, Point, Sample, Series, SeriesBook, Totals, point, rate_reference

WINDOW, GAP, HISTORY = 10.0, 30.0, 300.0

totals = st.builds(Totals, *(st.integers(0, 10**9) for _ in range(7)),
                   st.floats(0, 1e4, allow_nan=False, allow_infinity=False))
# Sample times: strictly increasing, with steps from sub-second to longer than a gap.
times = st.lists(st.floats(0.05, 3 * GAP, allow_nan=False), min_size=1, max_size=25).map(
    lambda steps: list(accumulate(steps)))


@given(times, st.floats(0, 10 * GAP, allow_nan=False))
def test_the_reference_is_recent_older_than_now_and_the_newest_settled_one(at: list[float], later: float) -> None:
    samples = [Sample(t, Totals()) for t in at]
    now = at[-1] + later
    reference = rate_reference(samples, now, WINDOW, GAP)
    recent = [s for s in samples if now - GAP <= s.at < now]
    if not recent:
        assert reference is None
        return
    assert reference is not None and now - GAP <= reference.at < now
    settled = [s for s in recent if s.at <= now - WINDOW]
    assert reference == (settled[-1] if settled else recent[0])


@given(times, st.lists(totals, min_size=1, max_size=25))
def test_rates_are_never_negative_and_are_the_increase_over_the_elapsed_time(at: list[float],
                                                                               values: list[Totals]) -> None:
    series = Series(HISTORY, WINDOW, GAP)
    for t, value in zip(at, values, strict=False):
        before = list(series.samples)
        added = series.add(t, value)
        reference = rate_reference(before, t, WINDOW, GAP)
        if reference is None:
            assert added.rates is None
            continue
        assert added.rates is not None and all(rate >= 0 for rate in added.rates)
        for rate, now, then in zip(added.rates, value.counters(), reference.totals.counters(), strict=True):
            assert rate == pytest.approx(max(now - then, 0) / (t - reference.at))


def test_a_steady_flow_reads_as_its_rate_whatever_the_heartbeat_rhythm() -> None:
    """Workers report every 2 s; sampled every second, the counter moves every other sample."""
    series = Series(HISTORY, WINDOW, GAP)
    rows = []
    for second in range(60):
        replicated = 100 * (second - second % 2)  # 100 records/s, seen in two-second steps
        rows.append(series.add(float(second), Totals(replicated=replicated, lag_records=7, lag_seconds=0.5)))
    assert all(p.rates is not None and p.rates[0] == pytest.approx(100) for p in rows[int(WINDOW):])
    assert rows[-1].lag_records == 7 and rows[-1].lag_seconds == 0.5


def test_after_a_gap_nobody_watched_no_rate_is_drawn_until_a_new_sample() -> None:
    series = Series(HISTORY, WINDOW, GAP)
    series.add(0.0, Totals(replicated=0))
    resumed = series.add(GAP + 60, Totals(replicated=10_000))
    assert resumed.rates is None, "a rate averaged over a gap nobody watched would be invented"
    after = series.add(GAP + 61, Totals(replicated=10_050))
    assert after.rates is not None and after.rates[0] == pytest.approx(50)


def test_counters_that_went_down_give_zero_rates_not_negative_ones() -> None:
    added = point(Sample(0, Totals(replicated=500, dropped=9)), Sample(5, Totals(replicated=20, dropped=1)))
    assert added.rates == (0, 0, 0, 0, 0, 0)


def test_points_older_than_the_history_are_dropped() -> None:
    series = Series(history_s=60, window_s=WINDOW, max_gap_s=GAP)
    for t in range(200):
        series.add(float(t), Totals(replicated=t))
    assert [p.at for p in series.points] == [float(t) for t in range(139, 200)]
    assert all(s.at >= 199 - GAP for s in series.samples)


def test_a_key_that_stops_appearing_is_forgotten_once_its_points_age_out() -> None:
    book = SeriesBook(history_s=60, window_s=WINDOW, max_gap_s=GAP)
    book.record(0.0, {"us-to-eu": Totals(), "eu-to-us": Totals()})
    book.record(30.0, {"us-to-eu": Totals()})
    assert set(book.series) == {"us-to-eu", "eu-to-us"}
    book.record(61.0, {"us-to-eu": Totals()})
    assert set(book.series) == {"us-to-eu"}


def test_since_returns_only_later_points() -> None:
    book = SeriesBook()
    for t in (1.0, 2.0, 3.0):
        book.record(t, {"*": Totals(replicated=int(t))})
    assert [p.at for p in book.since(1.5)["*"]] == [2.0, 3.0]
    assert [p.at for p in book.since(None)["*"]] == [1.0, 2.0, 3.0]
    assert book.since(3.0)["*"] == []


def test_a_row_is_time_then_every_field_in_order() -> None:
    row = Point(12.3456, (1.0, 2.0, 3.0, 4.0, 5.0, 6.0), 7, 8.25).row()
    assert row == [12.346, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7, 8.25]
    assert len(row) == 1 + len(FIELDS)
    assert Point(1.0, None, 3, 0.5).row() == [1.0, None, None, None, None, None, None, 3, 0.5]


@given(totals, totals, totals)
def test_totals_add_up_in_any_order_and_keep_the_largest_lag_seconds(a: Totals, b: Totals, c: Totals) -> None:
    assert (a + b) + c == a + (b + c) == c + (b + a)
    assert (a + b).lag_seconds == max(a.lag_seconds, b.lag_seconds)
    assert (a + b).counters() == tuple(x + y for x, y in zip(a.counters(), b.counters(), strict=True))
