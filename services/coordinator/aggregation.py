"""Turning workers' cumulative counters into totals, last-minute rates and lag.

Counters travel as flat `metric -> count` maps (`replicated`, `dropped.loop`,
`conflicts.stale`, ...) so that totals and time buckets are plain Redis hash
increments. A report from a new run, or a counter lower than last time, means
the worker restarted: its counters then count from zero, so all of them are new.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping

from amity.coordinator.schemas.stats import Counts, LinkStatsView, Throughput, TopicStatsView
from amity.stats import ConflictCounts, StatsReport, TopicStats

BUCKET_S = 5
WINDOW_S = 60
SEPARATOR = "|"  # in neither link ids nor Kafka topic names

Flat = dict[str, int]
Key = tuple[str, str]  # (link, topic)


def flatten(entry: TopicStats) -> Flat:
    flat = {"replicated": entry.replicated, "bytes": entry.bytes, "keyless": entry.keyless}
    flat.update({f"conflicts.{name}": count for name, count in entry.conflicts.model_dump().items()})
    flat.update({f"dropped.{reason}": count for reason, count in entry.dropped.items()})
    flat.update({f"dead_lettered.{reason}": count for reason, count in entry.dead_lettered.items()})
    return {metric: count for metric, count in flat.items() if count}


def increase(previous: Flat | None, current: Flat) -> Flat:
    """What was counted since `previous`; all of `current` when the counters restarted."""
    if previous is None or any(current.get(metric, 0) < count for metric, count in previous.items()):
        return dict(current)
    return {metric: count - previous.get(metric, 0) for metric, count in current.items()
            if count > previous.get(metric, 0)}


def report_increases(last: Mapping[Key, Flat], last_run: str | None, report: StatsReport) -> dict[Key, Flat]:
    """Per (link, topic), what a report adds to what this worker reported before."""
    restarted = last_run != report.run_id
    increases = {}
    for entry in report.topics:
        key = (entry.link, entry.topic)
        added = increase(None if restarted else last.get(key), flatten(entry))
        if added:
            increases[key] = added
    return increases


def field(key: Key, metric: str) -> str:
    return SEPARATOR.join((*key, metric))


def group(fields: Mapping[str, int]) -> dict[Key, Flat]:
    """Redis hash fields `link|topic|metric` back into per-(link, topic) flat counters."""
    grouped: dict[Key, Flat] = defaultdict(dict)
    for name, count in fields.items():
        link, topic, metric = name.split(SEPARATOR, 2)
        grouped[(link, topic)][metric] = grouped[(link, topic)].get(metric, 0) + int(count)
    return dict(grouped)


def window(now: float) -> tuple[list[int], float]:
    """The buckets making up the last minute, and the seconds they span."""
    first = math.ceil((now - WINDOW_S) / BUCKET_S)
    last = int(now // BUCKET_S)
    return list(range(first, last + 1)), now - first * BUCKET_S


def fold(flat: Flat) -> Counts:
    """Flat counters as the Counts model."""
    counts = Counts(replicated=flat.get("replicated", 0), bytes=flat.get("bytes", 0), keyless=flat.get("keyless", 0))
    conflicts = {}
    for metric, count in flat.items():
        kind, _, name = metric.partition(".")
        if kind == "dropped":
            counts.dropped[name] = count
        elif kind == "dead_lettered":
            counts.dead_lettered[name] = count
        elif kind == "conflicts":
            conflicts[name] = count
    counts.conflicts = ConflictCounts(**conflicts)
    return counts


def gauges(entries: Iterable[TopicStats]) -> dict[Key, tuple[int, float]]:
    """(lag records summed, lag seconds at most) per (link, topic) over live workers' latest entries."""
    lag: dict[Key, tuple[int, float]] = {}
    for entry in entries:
        records, seconds = lag.get((entry.link, entry.topic), (0, 0.0))
        lag[(entry.link, entry.topic)] = (records + entry.lag_records, max(seconds, entry.lag_seconds))
    return lag


def topic_views(totals: Mapping[Key, Flat], recent: Mapping[Key, Flat], lag: Mapping[Key, tuple[int, float]],
                span_s: float) -> list[TopicStatsView]:
    views = []
    for key in sorted(set(totals) | set(recent) | set(lag)):
        last_minute = recent.get(key, {})
        records, seconds = lag.get(key, (0, 0.0))
        views.append(TopicStatsView(
            link=key[0], topic=key[1], total=fold(totals.get(key, {})), last_minute=fold(last_minute),
            throughput=_throughput(last_minute, span_s), lag_records=records, lag_seconds=seconds))
    return views


def link_views(totals: Mapping[Key, Flat], recent: Mapping[Key, Flat], lag: Mapping[Key, tuple[int, float]],
               span_s: float) -> list[LinkStatsView]:
    """The per-topic figures summed per link (lag seconds: the largest)."""
    links = sorted({link for link, _ in (*totals, *recent, *lag)})
    views = []
    for link in links:
        keys = [key for key in {*totals, *recent, *lag} if key[0] == link]
        last_minute = _sum(recent.get(key, {}) for key in keys)
        views.append(LinkStatsView(
            link=link, topics=len(keys), total=fold(_sum(totals.get(key, {}) for key in keys)),
            last_minute=fold(last_minute), throughput=_throughput(last_minute, span_s),
            lag_records=sum(lag.get(key, (0, 0.0))[0] for key in keys),
            lag_seconds=max((lag.get(key, (0, 0.0))[1] for key in keys), default=0.0)))
    return views


def _sum(flats: Iterable[Flat]) -> Flat:
    total: Flat = defaultdict(int)
    for flat in flats:
        for metric, count in flat.items():
            total[metric] += count
    return dict(total)


def _throughput(last_minute: Flat, span_s: float) -> Throughput:
    return Throughput(records_per_s=last_minute.get("replicated", 0) / span_s,
                      bytes_per_s=last_minute.get("bytes", 0) / span_s)
