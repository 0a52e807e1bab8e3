"""Version vectors keyed by region: which writes a version has seen.

A vector is a plain tuple of (region, counter) pairs sorted by region, with no
zero entries: cheap to build per record, hashable, and the same shape the
provenance header carries. A missing region counts as 0, so two canonical
vectors are equal exactly when their tuples are.

Entries are keyed by region, not by producer: the set of regions is small and
stable, so vectors never need pruning (pruning actor-keyed clocks across
clusters is what broke Riak's full sync, basho/riak_kv#1864).
"""

from collections.abc import Iterable, Mapping
from enum import StrEnum

from amity.errors import AmityError
from amity.regions import REGION_NAME

Vector = tuple[tuple[str, int], ...]

EMPTY: Vector = ()
MAX_ENTRIES = 64
MAX_COUNTER = (1 << 48) - 1


class InvalidVector(AmityError):
    """A version vector from outside (a header, a stored state) is malformed."""


class Order(StrEnum):
    """How version `a` relates to version `b` in causal history."""

    EQUAL = "equal"
    BEFORE = "before"  # a happened before b: b has seen a
    AFTER = "after"  # b happened before a
    CONCURRENT = "concurrent"  # neither has seen the other


def compare(a: Vector, b: Vector) -> Order:
    """The causal relation of `a` to `b`, missing entries counting as 0."""
    if a == b:
        return Order.EQUAL
    left, right = dict(a), dict(b)
    less = greater = False
    for region in left.keys() | right.keys():
        x, y = left.get(region, 0), right.get(region, 0)
        less |= x < y
        greater |= x > y
    if less and greater:
        return Order.CONCURRENT
    if less:
        return Order.BEFORE
    return Order.AFTER if greater else Order.EQUAL


def merge(a: Vector, b: Vector) -> Vector:
    """The pointwise maximum: a vector that has seen everything `a` and `b` have."""
    merged = dict(a)
    for region, counter in b:
        if counter > merged.get(region, 0):
            merged[region] = counter
    return tuple(sorted(merged.items()))


def increment(vector: Vector, region: str) -> Vector:
    """`vector` after one more write in `region`."""
    counters = dict(vector)
    counters[region] = counters.get(region, 0) + 1
    return tuple(sorted(counters.items()))


def depth(vector: Vector) -> int:
    """How many writes the version has seen, its own included: grows with every causal step."""
    return sum(counter for _, counter in vector)


def checked(raw: Mapping[str, int] | Iterable[tuple[str, int]]) -> Vector:
    """A canonical vector from untrusted input, or InvalidVector saying what is wrong.

    Accepts a mapping or (region, counter) pairs in any order; drops zero
    entries; refuses unknown shapes, bad region names, negative, non-integer
    or oversized counters, repeated regions and more than MAX_ENTRIES regions.
    """
    pairs = list(raw.items() if isinstance(raw, Mapping) else raw)
    if len(pairs) > MAX_ENTRIES:
        raise InvalidVector(f"version vector has {len(pairs)} entries, more than the {MAX_ENTRIES} allowed")
    counters: dict[str, int] = {}
    for pair in pairs:
        region, counter = _entry(pair)
        if region in counters:
            raise InvalidVector(f"version vector names region {region!r} twice")
        counters[region] = counter
    return tuple(sorted((region, counter) for region, counter in counters.items() if counter))


def _entry(pair: object) -> tuple[str, int]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise InvalidVector(f"version vector entry {pair!r} is not a (region, counter) pair")
    region, counter = pair
    if not isinstance(region, str) or not REGION_NAME.fullmatch(region):
        raise InvalidVector(f"version vector entry names {region!r}, which is not a region name")
    if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
        raise InvalidVector(f"version vector counter {counter!r} for {region!r} is not an integer in 0..{MAX_COUNTER}")
    return region, counter
