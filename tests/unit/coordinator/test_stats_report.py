"""The stats report workers send: validation and the worker-side counters."""

import pytest
from pydantic import ValidationError

from amity.stats import StatsReport, TopicCounters, TopicStats


def test_counters_snapshot_carries_every_counter() -> None:
    counters = TopicCounters(replicated=5, bytes=50, keyless=1, lag_records=3, lag_seconds=0.5)
    counters.drop("loop")
    counters.drop("loop")
    counters.dead_letter("too-large")
    counters.conflicts_detected, counters.conflicts_resolved = 2, 1
    counters.conflicts_stale, counters.conflicts_topic = 1, 1
    entry = counters.snapshot("us-to-eu", "orders")
    assert entry.model_dump() == {
        "link": "us-to-eu", "topic": "orders", "replicated": 5, "bytes": 50, "keyless": 1,
        "dropped": {"loop": 2}, "dead_lettered": {"too-large": 1},
        "conflicts": {"detected": 2, "resolved": 1, "stale": 1, "conflicts_topic": 1},
        "lag_records": 3, "lag_seconds": 0.5,
    }


def test_snapshot_is_a_copy() -> None:
    counters = TopicCounters()
    counters.drop("loop")
    entry = counters.snapshot("us-to-eu", "orders")
    counters.drop("loop")
    assert entry.dropped == {"loop": 1}


def test_report_refuses_the_same_topic_twice() -> None:
    entry = TopicStats(link="us-to-eu", topic="orders")
    with pytest.raises(ValidationError, match="reported twice"):
        StatsReport(run_id="r1", topics=[entry, entry])


@pytest.mark.parametrize("bad", [
    {"link": "us-to-eu", "topic": "orders", "replicated": -1},
    {"link": "us-to-eu", "topic": "bad topic"},
    {"link": "US", "topic": "orders"},
    {"link": "us-to-eu", "topic": "orders", "dropped": {"Bad Reason": 1}},
    {"link": "us-to-eu", "topic": "orders", "unknown": 1},
])
def test_report_refuses_malformed_entries(bad: dict) -> None:
    with pytest.raises(ValidationError):
        StatsReport(run_id="r1", topics=[bad])
