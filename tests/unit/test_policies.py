"""Each policy's rank and decisions, tie-breaks, tombstones, and the byte encoding of ranks."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.clock import pack
from amity.ordering import MissingOrderingField
from amity.policies import (
    Decision,
    Head,
    InvalidVersion,
    UnorderedPolicy,
    Version,
    clock_ranked,
    decide,
    rank,
    rank_bytes,
    rank_tail,
    rank_template,
    resolved_winner,
)
from amity.rules import ConflictRule
from amity.vectors import Vector, checked

LWW = ConflictRule(topic="t", policy="lww")
TIMESTAMP = ConflictRule(topic="t", policy="timestamp", field="timestamp")
PRIORITY = ConflictRule(topic="t", policy="region-priority", regions=["eu", "us"])
VECTOR = ConflictRule(topic="t", policy="vector")
VECTOR_BY_PRIORITY = ConflictRule(topic="t", policy="vector", fallback="region-priority", regions=["eu", "us"])
NONE = ConflictRule(topic="t", policy="none")
ORDERED = [LWW, TIMESTAMP, PRIORITY, VECTOR, VECTOR_BY_PRIORITY]


def v(**counters: int) -> Vector:
    return checked(counters)


def version(
    hlc: int, origin: str = "us", vector: Vector = (("us", 1),), deleted: bool = False, field: int | None = 0
) -> Version:
    return Version(hlc=hlc, origin=origin, vector=vector, deleted=deleted, field=field)


# lww


def test_lww_applies_a_later_write_and_drops_an_earlier_one() -> None:
    old, new = version(pack(100, 0)), version(pack(100, 1))
    assert decide(LWW, old, new) is Decision.APPLY
    assert decide(LWW, new, old) is Decision.STALE


def test_lww_breaks_a_timestamp_tie_by_origin_region() -> None:
    us, eu = version(pack(100, 0), "us"), version(pack(100, 0), "eu")
    assert decide(LWW, eu, us) is Decision.APPLY
    assert decide(LWW, us, eu) is Decision.STALE


def test_a_redelivered_version_is_a_duplicate() -> None:
    for rule in ORDERED:
        assert decide(rule, version(pack(100, 0)), version(pack(100, 0))) is Decision.DUPLICATE


def test_anything_applies_over_nothing() -> None:
    for rule in [*ORDERED, NONE]:
        assert decide(rule, None, version(pack(1, 0))) is Decision.APPLY


def test_a_delete_is_never_undone_by_an_older_write() -> None:
    write = version(pack(100, 0), vector=v(us=1))
    delete = version(pack(100, 1), vector=v(us=2), deleted=True, field=None)
    for rule in ORDERED:
        assert decide(rule, delete, write) is Decision.STALE
        assert decide(rule, write, delete) is Decision.APPLY


def test_a_delete_wins_a_full_tie_with_a_write() -> None:
    """Only a malformed stamp can tie a write and a delete; the tie still has one answer everywhere."""
    write, delete = version(pack(100, 0)), version(pack(100, 0), deleted=True)
    assert decide(LWW, write, delete) is Decision.APPLY
    assert decide(LWW, delete, write) is Decision.STALE


# timestamp


def test_timestamp_orders_by_the_field_before_the_clock() -> None:
    early_field = version(pack(900, 0), field=10)
    late_field = version(pack(100, 0), field=20)
    assert decide(TIMESTAMP, early_field, late_field) is Decision.APPLY
    assert decide(TIMESTAMP, late_field, early_field) is Decision.STALE


def test_timestamp_breaks_a_field_tie_by_clock_then_origin() -> None:
    assert rank(TIMESTAMP, version(pack(5, 0), field=7)) < rank(TIMESTAMP, version(pack(5, 1), field=7))
    assert rank(TIMESTAMP, version(pack(5, 0), "eu", field=7)) < rank(TIMESTAMP, version(pack(5, 0), "us", field=7))


def test_timestamp_orders_a_tombstone_by_its_clock_milliseconds() -> None:
    delete = version(pack(1_000, 3), deleted=True, field=None)
    assert rank(TIMESTAMP, delete)[0] == 1_000
    assert decide(TIMESTAMP, delete, version(pack(2_000, 0), field=999)) is Decision.STALE
    assert decide(TIMESTAMP, delete, version(pack(10, 0), field=1_001)) is Decision.APPLY


def test_timestamp_refuses_a_write_without_its_field() -> None:
    with pytest.raises(MissingOrderingField, match="no ordering field"):
        decide(TIMESTAMP, version(pack(1, 0)), version(pack(2, 0), field=None))


# region-priority


def test_region_priority_lets_a_causally_newer_write_win_over_a_higher_region() -> None:
    eu = version(pack(100, 0), "eu", vector=v(eu=1))
    us_after_eu = version(pack(100, 1), "us", vector=v(eu=1, us=1))
    assert decide(PRIORITY, eu, us_after_eu) is Decision.APPLY
    assert decide(PRIORITY, us_after_eu, eu) is Decision.STALE


def test_region_priority_decides_concurrent_writes_of_equal_depth_by_the_list() -> None:
    eu = version(pack(100, 0), "eu", vector=v(eu=1))
    us = version(pack(900, 0), "us", vector=v(us=1))
    assert decide(PRIORITY, us, eu) is Decision.APPLY
    assert decide(PRIORITY, eu, us) is Decision.STALE


def test_region_priority_ranks_an_unlisted_region_below_every_listed_one() -> None:
    ap = version(pack(900, 0), "ap", vector=v(ap=1))
    us = version(pack(100, 0), "us", vector=v(us=1))
    assert rank(PRIORITY, ap) < rank(PRIORITY, us)


def test_region_priority_orders_writes_of_one_region_and_depth_by_clock() -> None:
    a, b = version(pack(100, 0), "us", vector=v(us=1, eu=1)), version(pack(100, 1), "us", vector=v(us=2))
    assert decide(PRIORITY, a, b) is Decision.APPLY


@pytest.mark.parametrize("rule", [PRIORITY, VECTOR, VECTOR_BY_PRIORITY])
def test_vector_based_policies_refuse_a_version_without_a_vector(rule: ConflictRule) -> None:
    with pytest.raises(MissingOrderingField, match="no version vector"):
        rank(rule, version(pack(1, 0), vector=()))


# vector


def test_vector_applies_a_dominating_version_and_drops_a_dominated_one() -> None:
    old, new = version(pack(100, 0), vector=v(us=1)), version(pack(100, 1), "eu", vector=v(us=1, eu=1))
    assert decide(VECTOR, old, new) is Decision.APPLY
    assert decide(VECTOR, new, old) is Decision.STALE


def test_vector_resolves_concurrent_versions_by_lww_and_flags_them() -> None:
    us, eu = version(pack(100, 0), "us", vector=v(us=1)), version(pack(200, 0), "eu", vector=v(eu=1))
    assert decide(VECTOR, us, eu) is Decision.CONFLICT_APPLIED
    assert decide(VECTOR, eu, us) is Decision.CONFLICT_STALE


def test_vector_with_region_priority_fallback_resolves_by_the_list() -> None:
    us, eu = version(pack(900, 0), "us", vector=v(us=1)), version(pack(100, 0), "eu", vector=v(eu=1))
    assert decide(VECTOR_BY_PRIORITY, us, eu) is Decision.CONFLICT_APPLIED
    assert decide(VECTOR_BY_PRIORITY, eu, us) is Decision.CONFLICT_STALE


def test_decisions_say_whether_they_apply_and_whether_they_conflict() -> None:
    assert [d for d in Decision if d.applies] == [Decision.APPLY, Decision.CONFLICT_APPLIED]
    assert [d for d in Decision if d.is_conflict] == [Decision.CONFLICT_APPLIED, Decision.CONFLICT_STALE]


# none


def test_none_applies_everything_as_it_arrives() -> None:
    new, old = version(pack(100, 1)), version(pack(100, 0))
    assert decide(NONE, new, old) is Decision.APPLY
    assert decide(NONE, new, new) is Decision.APPLY
    assert resolved_winner(NONE, [new, old]) is old


def test_none_has_no_rank() -> None:
    with pytest.raises(UnorderedPolicy, match="policy none"):
        rank(NONE, version(1))
    with pytest.raises(UnorderedPolicy, match="policy none"):
        rank_bytes(NONE, version(1))


def test_no_versions_resolve_to_nothing() -> None:
    for rule in [*ORDERED, NONE]:
        assert resolved_winner(rule, []) is None


# properties over arbitrary versions

regions = st.sampled_from(["ap", "eu", "us", "eu-west-1", "a" * 32])
versions = st.builds(
    Version,
    hlc=st.integers(0, 2**64 - 1) | st.integers(0, 4),
    origin=regions,
    vector=st.dictionaries(regions, st.integers(1, 2**40), min_size=1, max_size=4).map(checked),
    deleted=st.booleans(),
    field=st.integers(0, 2**63 - 1) | st.integers(0, 4),
)
distinct_versions = st.lists(versions, max_size=6, unique_by=lambda x: (x.hlc, x.origin))
rules = st.sampled_from(ORDERED)


@given(rules, versions, versions)
def test_byte_order_of_ranks_is_the_rank_order(rule: ConflictRule, a: Version, b: Version) -> None:
    ra, rb = rank(rule, a), rank(rule, b)
    ba, bb = rank_bytes(rule, a), rank_bytes(rule, b)
    assert (ba < bb, ba == bb) == (ra < rb, ra == rb)
    assert len(ba) == len(bb)


def test_rank_bytes_layouts() -> None:
    widths = {LWW: 41, TIMESTAMP: 49, PRIORITY: 51, VECTOR: 41, VECTOR_BY_PRIORITY: 51}
    for rule, width in widths.items():
        assert len(rank_bytes(rule, version(1))) == width
    assert rank_bytes(LWW, version(pack(1, 2), "us")) == pack(1, 2).to_bytes(8, "big") + b"us".ljust(32, b"\0") + b"\0"


@pytest.mark.parametrize("origin", ["x" * 33, "régión"])
def test_rank_bytes_refuses_an_origin_that_is_not_a_region_name(origin: str) -> None:
    with pytest.raises(InvalidVersion, match="not a region name"):
        rank_bytes(LWW, version(1, origin))
    with pytest.raises(InvalidVersion, match="not a region name"):
        rank_template(LWW, origin, False)


@given(rules, versions)
def test_a_rank_template_filled_with_the_stamp_is_the_versions_rank(rule: ConflictRule, a: Version) -> None:
    template = rank_template(rule, a.origin, a.deleted, a.field)
    assert template.fill(a.hlc, a.vector) == rank_bytes(rule, a)


def test_rank_templates_leave_to_the_stamp_only_what_depends_on_it() -> None:
    assert rank_template(LWW, "us", False).kind is Head.GIVEN and rank_template(LWW, "us", False).head == b""
    assert rank_template(TIMESTAMP, "us", False, 7).head == (7).to_bytes(8, "big")
    assert rank_template(TIMESTAMP, "us", True).kind is Head.STAMP_MS
    assert rank_template(PRIORITY, "us", False).kind is Head.DEPTH
    assert rank_template(PRIORITY, "eu", False).head == (2).to_bytes(2, "big")
    with pytest.raises(MissingOrderingField):
        rank_template(TIMESTAMP, "us", False, None)


@given(rules, versions)
def test_clock_ranked_ranks_are_the_hlc_then_the_tail(rule: ConflictRule, a: Version) -> None:
    rank_of = rank_bytes(rule, a)
    assert rank_of.endswith(rank_tail(a.origin, a.deleted))
    assert clock_ranked(rule) is (rank_of == a.hlc.to_bytes(8, "big") + rank_tail(a.origin, a.deleted))


@given(rules, versions, versions)
def test_every_pair_is_decided_one_way(rule: ConflictRule, a: Version, b: Version) -> None:
    """Antisymmetry: of two different versions exactly one replaces the other, whichever is held."""
    forward, backward = decide(rule, a, b), decide(rule, b, a)
    if rank(rule, a) == rank(rule, b):
        assert forward is backward is Decision.DUPLICATE
    else:
        assert forward.applies != backward.applies


def _fold(rule: ConflictRule, arrivals: list[Version]) -> Version | None:
    held = None
    for arriving in arrivals:
        if decide(rule, held, arriving).applies:
            held = arriving
    return held


@given(rules, distinct_versions, st.randoms(use_true_random=False))
def test_any_arrival_order_ends_at_the_resolved_winner(rule: ConflictRule, history: list[Version], random) -> None:
    winner = resolved_winner(rule, history)
    shuffled = random.sample(history, len(history))
    assert _fold(rule, shuffled) == winner
    assert winner is None or all(rank(rule, winner) >= rank(rule, other) for other in history)


@given(rules, distinct_versions)
def test_applying_everything_twice_is_applying_it_once(rule: ConflictRule, history: list[Version]) -> None:
    twice = [x for pair in zip(history, history) for x in pair] + history
    assert _fold(rule, twice) == _fold(rule, history)


@given(distinct_versions)
def test_none_resolves_to_what_arrived_last(history: list[Version]) -> None:
    assert resolved_winner(NONE, history) == _fold(NONE, history) == (history[-1] if history else None)


def test_small_histories_exhaustively() -> None:
    """Every order of a concurrent, causal and deleting history lands on one winner."""
    history = [
        version(pack(100, 0), "us", v(us=1)),
        version(pack(100, 0), "eu", v(eu=1)),
        version(pack(100, 1), "us", v(us=2, eu=1), deleted=True, field=None),
        version(pack(100, 2), "eu", v(eu=2)),
    ]
    for rule in ORDERED:
        outcomes = {_fold(rule, list(order)) for order in itertools.permutations(history)}
        assert outcomes == {resolved_winner(rule, history)}
