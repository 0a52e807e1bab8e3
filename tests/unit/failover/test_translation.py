"""Offset translation on modelled regions: no loss ever, the earliest safe offset, re-deliveries counted exactly.

A scenario is two regions holding the same origin streams, each stream in its
own order-preserving copy: in the partition of the same number (equal
partition counts, what the mirror does) or spread by key (different counts),
interleaved differently per region, each region lagging on its own, and
optionally with runs the mirror wrote twice after a crash. A group commits
somewhere in region A; the translation must resume it in region B.
"""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.failover.positions import expected_streams
from amity.failover.streams import Frontier, Stream, advance
from amity.failover.translation import (
    PartitionCut, ResumeSearch, behind, crossed, processed_frontier, split_streams,
)

Record = tuple[Stream, int]


@dataclass
class Scenario:
    a: list[list[Record]]
    b: list[list[Record]]
    commits: dict[int, int | None]
    split: bool
    rewinds_in_b: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    split = draw(st.booleans())
    rewinds = not split and draw(st.booleans())
    partitions_a = draw(st.integers(1, 3))
    partitions_b = draw(st.integers(1, 3)) if split else partitions_a
    origins = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3, unique=True))
    streams = [(origin, "t", k) for origin in origins for k in range(partitions_a)]
    lengths = {s: draw(st.integers(0, 10)) for s in streams}
    keys = {s: draw(st.lists(st.integers(0, 11), min_size=lengths[s], max_size=lengths[s])) for s in streams}

    def region(partitions: int, rewind: bool) -> list[list[Record]]:
        queues: list[list[list[Record]]] = [[] for _ in range(partitions)]
        for s in streams:
            held = draw(st.integers(0, lengths[s]))
            offsets = list(range(held))
            if rewind and held and draw(st.booleans()):
                upto = draw(st.integers(0, held - 1))
                offsets = list(range(upto + 1)) + list(range(draw(st.integers(0, upto)), held))
            per_partition: dict[int, list[Record]] = {}
            for o in offsets:
                partition = keys[s][o] % partitions if split else s[2]
                per_partition.setdefault(partition, []).append((s, o))
            for partition, records in per_partition.items():
                queues[partition].append(records)
        return [_interleave(draw, queue) for queue in queues]

    a = region(partitions_a, rewinds)
    b = region(partitions_b, rewinds)
    commits = {p: draw(st.none() | st.integers(0, len(records))) for p, records in enumerate(a)}
    return Scenario(a, b, commits, split, rewinds)


def _interleave(draw: st.DrawFn, queues: list[list[Record]]) -> list[Record]:
    queues = [list(q) for q in queues if q]
    merged = []
    while queues:
        queue = queues[draw(st.integers(0, len(queues) - 1))]
        merged.append(queue.pop(0))
        queues = [q for q in queues if q]
    return merged


def running_max(records: list[Record]) -> Frontier:
    seen: Frontier = {}
    for stream, offset in records:
        advance(seen, stream, offset)
    return seen


def cuts_of(scenario: Scenario) -> list[PartitionCut]:
    cuts = []
    for p, records in enumerate(scenario.a):
        commit = scenario.commits[p]
        before = running_max(records[:commit]) if commit is not None else {}
        cuts.append(PartitionCut(p, before, frozenset(s for s, _ in records)))
    return cuts


def processed_set(scenario: Scenario) -> set[Record]:
    return {r for p, records in enumerate(scenario.a) for r in records[:scenario.commits[p] or 0]}


def search(partition: list[Record], processed: Frontier, start: int = 0,
           expected: frozenset[Stream] | None = None) -> tuple[int, int]:
    """(resume index, re-deliveries counted), feeding from `start` with the running maximum before it.

    `expected` defaults to every stream the partition holds, as a complete index would know them.
    """
    if expected is None:
        expected = frozenset(s for s, _ in partition)
    finder = ResumeSearch(processed, running_max(partition[:start]), expected)
    for index in range(start, len(partition)):
        if finder.feed(index, *partition[index]):
            break
    return (finder.resume if finder.resume is not None else len(partition)), finder.redelivered


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_nothing_unprocessed_is_skipped(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    done = processed_set(scenario)
    for partition in scenario.b:
        resume, _ = search(partition, processed)
        assert all(record in done for record in partition[:resume])


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_frontier_claims_only_processed_records(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    done = processed_set(scenario)
    in_a = {record for records in scenario.a for record in records}
    for stream, highest in processed.items():
        assert all((stream, o) in done for o in range(highest + 1) if (stream, o) in in_a)


@settings(max_examples=300, deadline=None)
@given(scenarios().filter(lambda s: not s.split))
def test_resume_is_the_first_unprocessed_record(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    done = processed_set(scenario)
    for partition in scenario.b:
        resume, _ = search(partition, processed)
        assert resume == len(partition) or partition[resume] not in done


@settings(max_examples=300, deadline=None)
@given(scenarios().filter(lambda s: not s.rewinds_in_b and not s.split))
def test_redeliveries_are_counted_exactly(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    done = processed_set(scenario)
    for partition in scenario.b:
        resume, redelivered = search(partition, processed)
        assert redelivered == sum(1 for record in partition[resume:] if record in done)


@settings(max_examples=300, deadline=None)
@given(scenarios().filter(lambda s: not s.rewinds_in_b and not s.split))
def test_without_an_index_the_streams_of_the_partitions_number_suffice(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    for q, partition in enumerate(scenario.b):
        homed = expected_streams(q, processed, None)
        assert search(partition, processed, expected=homed) == search(partition, processed)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_redeliveries_are_never_overcounted(scenario: Scenario) -> None:
    processed = processed_frontier(cuts_of(scenario))
    done = processed_set(scenario)
    for partition in scenario.b:
        resume, redelivered = search(partition, processed)
        assert redelivered <= sum(1 for record in partition[resume:] if record in done)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_split_streams_are_exactly_those_seen_off_their_partition(scenario: Scenario) -> None:
    cuts = cuts_of(scenario)
    off = {s for p, records in enumerate(scenario.a) for s, _ in records if s[2] != p}
    assert split_streams(cuts) == off
    if not scenario.split:
        assert not split_streams(cuts)


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.integers(1, 6))
def test_starting_from_the_last_uncrossed_snapshot_changes_nothing(scenario: Scenario, every: int) -> None:
    processed = processed_frontier(cuts_of(scenario))
    for partition in scenario.b:
        snapshots = range(0, len(partition) + 1, every)
        start = max((o for o in snapshots if not crossed(running_max(partition[:o]), processed)), default=0)
        assert search(partition, processed, start) == search(partition, processed)


def test_active_passive_resumes_where_the_group_stopped_with_no_redelivery() -> None:
    a = [(("a", "t", 0), o) for o in range(10)]
    processed = processed_frontier([PartitionCut(0, running_max(a[:6]), frozenset({("a", "t", 0)}))])
    assert processed == {("a", "t", 0): 5}
    assert search(a[:8], processed) == (6, 0)


def test_active_active_interleavings_give_redeliveries_and_no_loss() -> None:
    local_a, local_b = ("a", "t", 0), ("b", "t", 0)
    in_a = [(local_a, 0), (local_a, 1), (local_a, 2), (local_b, 0), (local_b, 1), (local_b, 2)]
    in_b = [(local_b, 0), (local_b, 1), (local_a, 0), (local_a, 1), (local_b, 2), (local_a, 2)]
    processed = processed_frontier([PartitionCut(0, running_max(in_a[:3]), frozenset({local_a, local_b}))])
    assert processed == {local_a: 2}
    assert search(in_b, processed) == (0, 3)


def test_a_stream_split_over_partitions_takes_the_lowest_progress() -> None:
    s = ("c", "t", 0)
    cuts = [PartitionCut(0, {s: 8}, frozenset({s})), PartitionCut(1, {s: 3}, frozenset({s}))]
    assert processed_frontier(cuts) == {s: 3}


def test_a_split_stream_that_a_partition_holds_only_after_the_commit_counts_as_unprocessed() -> None:
    s = ("c", "t", 0)
    cuts = [PartitionCut(0, {s: 8}, frozenset({s})), PartitionCut(1, {}, frozenset({s}))]
    assert processed_frontier(cuts) == {}


def test_partitions_without_a_commit_contribute_nothing() -> None:
    cuts = [PartitionCut(0, {("a", "t", 0): 4}), PartitionCut(1, {}, frozenset({("a", "t", 1)}))]
    assert processed_frontier(cuts) == {("a", "t", 0): 4}


@pytest.mark.parametrize("seen, expected", [({}, False), ({("a", "t", 0): 5}, False), ({("a", "t", 0): 6}, True),
                                            ({("x", "t", 0): 0}, True)])
def test_crossed_means_some_record_was_not_processed(seen: Frontier, expected: bool) -> None:
    assert crossed(seen, {("a", "t", 0): 5}) is expected


def test_behind_lists_streams_the_destination_holds_less_of() -> None:
    processed = {("a", "t", 0): 9, ("a", "t", 1): 4, ("c", "t", 0): 2}
    held = {("a", "t", 0): 7, ("a", "t", 1): 4}
    assert behind(processed, held) == {("a", "t", 0): (9, 7), ("c", "t", 0): (2, -1)}


def test_search_settles_once_every_stream_reached_the_frontier() -> None:
    s, t = ("a", "t", 0), ("b", "t", 0)
    finder = ResumeSearch({s: 1, t: 0}, {}, frozenset({s, t}))
    assert finder.feed(0, s, 0) is False
    assert finder.feed(1, s, 2) is False
    assert (finder.resume, finder.redelivered) == (1, 0)
    assert finder.feed(2, s, 1) is False
    assert finder.feed(3, t, 0) is True
    assert (finder.resume, finder.redelivered) == (1, 2)
