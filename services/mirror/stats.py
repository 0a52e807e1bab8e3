"""What a worker counts per link and topic, exposed as Prometheus metrics and as a stats report.

Counting happens once per batch under a lock, so the reporting thread reads a
consistent snapshot while replication goes on.
"""

import threading
import time
from collections import defaultdict

from prometheus_client import Counter, Gauge

from amity.mirror.router import Message, Routed
from amity.stats import MAX_PROBLEM_CHARS, LinkHealth, TopicCounters, TopicStats

RECORDS = Counter("amity_mirror_records", "Records written to the destination", ["link", "topic"])
BYTES = Counter("amity_mirror_bytes", "Key and value bytes written to the destination", ["link", "topic"])
DROPPED = Counter("amity_mirror_dropped", "Records not written, by loop-prevention reason", ["link", "topic", "reason"])
DEAD = Counter("amity_mirror_dead_lettered", "Records sent to the dead-letter topic, by reason",
               ["link", "topic", "reason"])
LAG_RECORDS = Gauge("amity_mirror_lag_records", "Records behind the end of the source partitions",
                    ["link", "topic"])
LAG_SECONDS = Gauge("amity_mirror_lag_seconds", "Age of the last replicated record while behind, else 0",
                    ["link", "topic"])
RECORD_AGE = Gauge("amity_mirror_record_age_seconds", "Origin timestamp to write, newest record",
                   ["link", "topic"])
STALE = Counter("amity_mirror_stale", "Records older than the destination's version, not written",
                ["link", "topic"])
CONFLICTS = Counter("amity_mirror_conflicts", "Concurrent versions detected and recorded in <topic>.conflicts",
                    ["link", "topic"])
TAIL_REPAIRS = Counter("amity_mirror_tail_repairs", "Winning records appended again because a losing version had "
                       "landed after them (amity.tails)", ["link"])
HEALTHY = Gauge("amity_mirror_link_healthy", "1 while the link replicates, 0 while it retries", ["link"])
IN_FLIGHT = Gauge("amity_mirror_in_flight", "Records written but not yet acknowledged", ["link"])


class LinkStats:
    """Counters of one link, by source topic."""

    def __init__(self, link: str) -> None:
        self.link = link
        self.topics: dict[str, TopicCounters] = defaultdict(TopicCounters)
        self.last_written_ms: dict[str, int] = {}
        self.is_healthy = False
        self.problem = ""
        self._lock = threading.Lock()

    def count_routed(self, routed: Routed, records: list[Message]) -> None:
        written: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for msg, _headers in routed.forward:
            entry = written[msg.topic()]
            key, value = msg.key(), msg.value()
            entry[0] += 1
            entry[1] += (len(key) if key else 0) + (len(value) if value else 0)
            entry[2] = msg.timestamp()[1]
        with self._lock:
            for topic, (count, size, newest_ms) in written.items():
                counters = self.topics[topic]
                counters.replicated += count
                counters.bytes += size
                self.last_written_ms[topic] = newest_ms
                RECORDS.labels(self.link, topic).inc(count)
                BYTES.labels(self.link, topic).inc(size)
                RECORD_AGE.labels(self.link, topic).set(max(time.time() - newest_ms / 1000, 0))
            for (topic, reason), count in routed.dropped.items():
                self.topics[topic].dropped[reason] = self.topics[topic].dropped.get(reason, 0) + count
                DROPPED.labels(self.link, topic, reason).inc(count)
            for msg, reason, _detail in routed.dead:
                self.topics[msg.topic()].dead_letter(reason)
                DEAD.labels(self.link, msg.topic(), reason).inc()

    def count_decided(self, decided) -> None:
        """What the resolver did with a batch: conflicts, stale drops, keyless records (dead letters are counted
        with the routed batch they join)."""
        with self._lock:
            for (topic, what), count in decided.counts.items():
                counters = self.topics[topic]
                if what == "keyless":
                    counters.keyless += count
                elif what == "stale":
                    counters.conflicts_stale += count
                    STALE.labels(self.link, topic).inc(count)
                elif what == "detected":
                    counters.conflicts_detected += count
                    counters.conflicts_topic += count
                    CONFLICTS.labels(self.link, topic).inc(count)
                elif what == "resolved":
                    counters.conflicts_resolved += count

    def repaired(self, copies: int) -> None:
        TAIL_REPAIRS.labels(self.link).inc(copies)

    def lag(self, records_behind: dict[str, int]) -> None:
        now_ms = time.time() * 1000
        with self._lock:
            for topic, behind in records_behind.items():
                counters = self.topics[topic]
                counters.lag_records = behind
                newest = self.last_written_ms.get(topic)
                counters.lag_seconds = max((now_ms - newest) / 1000, 0.0) if behind and newest else 0.0
                LAG_RECORDS.labels(self.link, topic).set(behind)
                LAG_SECONDS.labels(self.link, topic).set(counters.lag_seconds)

    def healthy(self, ok: bool, problem: str) -> None:
        self.is_healthy, self.problem = ok, problem
        HEALTHY.labels(self.link).set(1 if ok else 0)

    def progressed(self) -> None:
        """The link's writes are acknowledged again: whatever it reported failing is over."""
        if not self.is_healthy:
            self.healthy(True, "")

    def health(self) -> LinkHealth:
        problem = self.problem
        if len(problem) > MAX_PROBLEM_CHARS:
            problem = problem[:MAX_PROBLEM_CHARS - 1] + "…"
        return LinkHealth(link=self.link, healthy=self.is_healthy, problem=problem)

    def in_flight(self, records: int) -> None:
        IN_FLIGHT.labels(self.link).set(records)

    def snapshot(self) -> list[TopicStats]:
        with self._lock:
            return [counters.snapshot(self.link, topic) for topic, counters in sorted(self.topics.items())]
