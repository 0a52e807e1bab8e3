"""Rates and gauges over the last minutes, from successive samples of cumulative totals.

The dashboard charts these. Workers report with every heartbeat (two seconds by
default), so a rate taken between two samples one second apart would swing
between zero and double; rates are therefore taken over a window of about ten
seconds. Samples are taken only while someone watches: after a gap longer than
`max_gap_s`, a rate is taken over what was seen since, or not drawn at all,
never averaged over the gap.
"""

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# The order of a point's values on the wire, after its time.
FIELDS = ("records_per_s", "bytes_per_s", "dropped_per_s", "conflicts_per_s", "stale_per_s",
          "dead_lettered_per_s", "lag_records", "lag_seconds")
ALL_LINKS = "*"  # the key of the sum over every link


@dataclass(frozen=True, slots=True)
class Totals:
    """Cumulative counters of one link or (link, topic) at one instant, and its lag gauges."""

    replicated: int = 0
    bytes: int = 0
    dropped: int = 0
    conflicts: int = 0
    stale: int = 0
    dead_lettered: int = 0
    lag_records: int = 0
    lag_seconds: float = 0.0

    def __add__(self, other: "Totals") -> "Totals":
        """Counters and lag records add up; lag seconds is the largest (the slowest part sets it)."""
        return Totals(self.replicated + other.replicated, self.bytes + other.bytes, self.dropped + other.dropped,
                      self.conflicts + other.conflicts, self.stale + other.stale,
                      self.dead_lettered + other.dead_lettered, self.lag_records + other.lag_records,
                      max(self.lag_seconds, other.lag_seconds))

    def counters(self) -> tuple[int, ...]:
        return self.replicated, self.bytes, self.dropped, self.conflicts, self.stale, self.dead_lettered


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    totals: Totals


@dataclass(frozen=True, slots=True)
class Point:
    """What a chart draws at one instant; rates are None where nothing recent enough was sampled."""

    at: float
    rates: tuple[float, ...] | None
    lag_records: int
    lag_seconds: float

    def row(self) -> list[float | int | None]:
        """The compact wire form: time, then FIELDS in order."""
        rates: Iterable[float | None] = self.rates if self.rates is not None else (None,) * 6
        return [round(self.at, 3), *(None if r is None else round(r, 3) for r in rates), self.lag_records,
                round(self.lag_seconds, 3)]


def rate_reference(samples: Iterable[Sample], now: float, window_s: float, max_gap_s: float) -> Sample | None:
    """The sample to take rates from at `now`: the newest one at least `window_s` old, else the oldest one
    younger than that; never one older than `max_gap_s` (a gap nobody watched) nor one not before `now`."""
    recent = [s for s in samples if now - max_gap_s <= s.at < now]
    if not recent:
        return None
    settled = [s for s in recent if s.at <= now - window_s]
    return settled[-1] if settled else recent[0]


def point(reference: Sample | None, now: Sample) -> Point:
    """Rates between the reference and now, never negative (counters that went down mean the coordinator's
    state was reset: nothing was counted since, as far as a chart can tell)."""
    totals = now.totals
    rates = None
    if reference is not None:
        elapsed = now.at - reference.at
        rates = tuple(max(current - before, 0) / elapsed
                      for current, before in zip(totals.counters(), reference.totals.counters(), strict=True))
    return Point(now.at, rates, totals.lag_records, totals.lag_seconds)


class Series:
    """One link's or (link, topic)'s recent samples (for rates) and points (for charts)."""

    def __init__(self, history_s: float, window_s: float, max_gap_s: float) -> None:
        self.history_s = history_s
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.samples: deque[Sample] = deque()
        self.points: deque[Point] = deque()

    def add(self, at: float, totals: Totals) -> Point:
        sample = Sample(at, totals)
        added = point(rate_reference(self.samples, at, self.window_s, self.max_gap_s), sample)
        self.samples.append(sample)
        self.points.append(added)
        while self.samples and self.samples[0].at < at - self.max_gap_s:
            self.samples.popleft()
        self.trim(at)
        return added

    def trim(self, now: float) -> None:
        while self.points and self.points[0].at < now - self.history_s:
            self.points.popleft()


class SeriesBook:
    """Every key's series; a key that stops appearing (a deleted link) is forgotten once its points age out."""

    def __init__(self, history_s: float = 300.0, window_s: float = 10.0, max_gap_s: float = 30.0) -> None:
        self.history_s = history_s
        self.window_s = window_s
        self.max_gap_s = max_gap_s
        self.series: dict[str, Series] = {}

    def record(self, at: float, totals: Mapping[str, Totals]) -> dict[str, Point]:
        added = {}
        for key, value in totals.items():
            series = self.series.get(key)
            if series is None:
                series = self.series[key] = Series(self.history_s, self.window_s, self.max_gap_s)
            added[key] = series.add(at, value)
        for key in [key for key in self.series if key not in totals]:
            self.series[key].trim(at)
            if not self.series[key].points:
                del self.series[key]
        return added

    def since(self, after: float | None) -> dict[str, list[Point]]:
        """Every key's points later than `after` (all of them when None)."""
        return {key: [p for p in series.points if after is None or p.at > after]
                for key, series in self.series.items()}
