"""Version vectors: the causal relation, merge, increment, depth, and checking untrusted input."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.errors import AmityError
from amity.vectors import (
    MAX_COUNTER,
    MAX_ENTRIES,
    InvalidVector,
    Order,
    Vector,
    checked,
    compare,
    depth,
    increment,
    merge,
)

FLIPPED = {
    Order.EQUAL: Order.EQUAL,
    Order.BEFORE: Order.AFTER,
    Order.AFTER: Order.BEFORE,
    Order.CONCURRENT: Order.CONCURRENT,
}

vectors = st.dictionaries(st.sampled_from(["ap", "eu", "us", "sa"]), st.integers(0, 4)).map(checked)


def v(**counters: int) -> Vector:
    return checked(counters)


@pytest.mark.parametrize(
    ("a", "b", "order"),
    [
        (v(), v(), Order.EQUAL),
        (v(us=1), v(us=1), Order.EQUAL),
        ((("us", 0),), v(), Order.EQUAL),
        (v(us=1), v(us=2), Order.BEFORE),
        (v(us=2), v(us=1), Order.AFTER),
        (v(), v(eu=1), Order.BEFORE),
        (v(us=1), v(us=1, eu=1), Order.BEFORE),
        (v(us=2, eu=1), v(us=1), Order.AFTER),
        (v(us=1), v(eu=1), Order.CONCURRENT),
        (v(us=1, eu=2), v(us=2, eu=1), Order.CONCURRENT),
        (v(us=3), v(us=1, eu=1), Order.CONCURRENT),
    ],
)
def test_compare(a: Vector, b: Vector, order: Order) -> None:
    assert compare(a, b) is order


def _dominated_or_equal(a: Vector, b: Vector) -> bool:
    left, right = dict(a), dict(b)
    return all(left[region] <= right.get(region, 0) for region in left)


@given(vectors, vectors)
def test_compare_agrees_with_the_pointwise_definition(a: Vector, b: Vector) -> None:
    below, above = _dominated_or_equal(a, b), _dominated_or_equal(b, a)
    expected = {(True, True): Order.EQUAL, (True, False): Order.BEFORE, (False, True): Order.AFTER}
    assert compare(a, b) is expected.get((below, above), Order.CONCURRENT)


@given(vectors, vectors)
def test_compare_is_antisymmetric(a: Vector, b: Vector) -> None:
    assert compare(b, a) is FLIPPED[compare(a, b)]


@given(vectors, vectors, vectors)
def test_happened_before_is_transitive(a: Vector, b: Vector, c: Vector) -> None:
    if compare(a, b) is Order.BEFORE and compare(b, c) is Order.BEFORE:
        assert compare(a, c) is Order.BEFORE


@given(vectors, vectors)
def test_a_dominating_vector_is_strictly_deeper(a: Vector, b: Vector) -> None:
    if compare(a, b) is Order.AFTER:
        assert depth(a) > depth(b)


@given(vectors, vectors)
def test_merge_has_seen_both_and_nothing_more(a: Vector, b: Vector) -> None:
    merged = merge(a, b)
    assert compare(merged, a) in (Order.AFTER, Order.EQUAL)
    assert compare(merged, b) in (Order.AFTER, Order.EQUAL)
    assert dict(merged) == {r: max(dict(a).get(r, 0), dict(b).get(r, 0)) for r in dict(a) | dict(b)}


@given(vectors, vectors, vectors)
def test_merge_is_commutative_associative_and_idempotent(a: Vector, b: Vector, c: Vector) -> None:
    assert merge(a, b) == merge(b, a)
    assert merge(merge(a, b), c) == merge(a, merge(b, c))
    assert merge(a, a) == a


@given(vectors, st.sampled_from(["ap", "eu", "us"]))
def test_increment_makes_a_strictly_newer_vector_one_deeper(a: Vector, region: str) -> None:
    newer = increment(a, region)
    assert compare(newer, a) is Order.AFTER
    assert depth(newer) == depth(a) + 1
    assert dict(newer)[region] == dict(a).get(region, 0) + 1
    assert list(newer) == sorted(newer)


def test_depth_sums_the_counters() -> None:
    assert depth(v()) == 0
    assert depth(v(us=3, eu=4)) == 7


def test_checked_returns_the_canonical_form() -> None:
    assert checked([("us", 2), ("eu", 0), ("ap", 1)]) == (("ap", 1), ("us", 2))
    assert checked({"us": 2, "ap": 1}) == (("ap", 1), ("us", 2))
    assert checked([["eu", 3]]) == (("eu", 3),)
    assert checked([]) == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([("us", -1)], "not an integer in 0"),
        ([("us", MAX_COUNTER + 1)], "not an integer in 0"),
        ([("us", True)], "not an integer in 0"),
        ([("us", 1.0)], "not an integer in 0"),
        ([("us", "1")], "not an integer in 0"),
        ([("US", 1)], "not a region name"),
        ([("", 1)], "not a region name"),
        ([("x" * 33, 1)], "not a region name"),
        ([(7, 1)], "not a region name"),
        ([("us", 1), ("us", 2)], "twice"),
        ([("us", 1, 2)], "not a .region, counter. pair"),
        (["us"], "not a .region, counter. pair"),
        ([(f"r{i}", 1) for i in range(MAX_ENTRIES + 1)], "more than the 64 allowed"),
    ],
)
def test_checked_refuses_malformed_vectors(raw: list, message: str) -> None:
    with pytest.raises(InvalidVector, match=message):
        checked(raw)


def test_invalid_vector_is_an_amity_error() -> None:
    assert issubclass(InvalidVector, AmityError)


def test_checked_accepts_the_largest_vector_allowed() -> None:
    raw = [(f"r{i}", MAX_COUNTER) for i in range(MAX_ENTRIES)]
    assert len(checked(raw)) == MAX_ENTRIES
