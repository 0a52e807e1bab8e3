"""Hybrid logical clock: packing, every case of the tick and receive rules, the skew guard."""

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.clock import (
    MAX_COUNTER,
    MAX_HLC,
    MAX_MS,
    ClockError,
    ClockSkewError,
    HybridClock,
    TimestampRangeError,
    pack,
    physical_ms,
    unpack,
)
from amity.errors import AmityError


class WallClock:
    """A wall clock the test sets by hand."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def clock_at(ms: int, last: tuple[int, int] = (0, 0), max_skew_ms: int = 60_000) -> tuple[HybridClock, WallClock]:
    wall = WallClock(ms)
    return HybridClock(wall, max_skew_ms=max_skew_ms, last=pack(*last)), wall


ms_values = st.integers(0, MAX_MS)
counters = st.integers(0, MAX_COUNTER)


@given(ms_values, counters)
def test_pack_unpack_round_trip(ms: int, counter: int) -> None:
    hlc = pack(ms, counter)
    assert unpack(hlc) == (ms, counter)
    assert physical_ms(hlc) == ms
    assert 0 <= hlc <= MAX_HLC


@given(ms_values, counters, ms_values, counters)
def test_packed_order_is_lexicographic_order_of_parts(ms1: int, c1: int, ms2: int, c2: int) -> None:
    assert (pack(ms1, c1) < pack(ms2, c2)) == ((ms1, c1) < (ms2, c2))


def test_counter_overflow_carries_into_milliseconds() -> None:
    assert pack(7, MAX_COUNTER) + 1 == pack(8, 0)


@pytest.mark.parametrize(("ms", "counter"), [(-1, 0), (MAX_MS + 1, 0), (0, -1), (0, MAX_COUNTER + 1)])
def test_pack_refuses_parts_out_of_range(ms: int, counter: int) -> None:
    with pytest.raises(TimestampRangeError):
        pack(ms, counter)


@pytest.mark.parametrize("hlc", [-1, MAX_HLC + 1])
def test_unpack_refuses_values_outside_64_bits(hlc: int) -> None:
    with pytest.raises(TimestampRangeError, match="64 bits"):
        unpack(hlc)


# tick: l = max(l', pt); c = c + 1 if l == l' else 0


def test_tick_takes_the_wall_clock_when_it_is_ahead() -> None:
    clock, _ = clock_at(1_000, last=(900, 5))
    assert unpack(clock.tick()) == (1_000, 0)


def test_tick_counts_within_the_same_millisecond() -> None:
    clock, _ = clock_at(1_000, last=(1_000, 5))
    assert unpack(clock.tick()) == (1_000, 6)


def test_tick_stays_monotonic_when_the_wall_clock_goes_back() -> None:
    clock, wall = clock_at(1_000)
    first = clock.tick()
    wall.ms = 400
    second = clock.tick()
    assert second > first
    assert unpack(second) == (1_000, 1)


def test_tick_advances_the_milliseconds_when_the_counter_overflows() -> None:
    clock, _ = clock_at(1_000, last=(1_000, MAX_COUNTER))
    assert unpack(clock.tick()) == (1_001, 0)


def test_tick_records_what_it_issued() -> None:
    clock, _ = clock_at(1_000)
    issued = clock.tick()
    assert clock.last == issued == pack(1_000, 0)


# observe: l = max(l', lm, pt); c by which of them l equals


def test_observe_takes_the_wall_clock_when_it_is_ahead_of_both() -> None:
    clock, _ = clock_at(1_000, last=(900, 3))
    assert unpack(clock.observe(pack(950, 7))) == (1_000, 0)


def test_observe_counts_on_from_the_local_clock_when_it_is_ahead() -> None:
    clock, _ = clock_at(500, last=(1_000, 3))
    assert unpack(clock.observe(pack(950, 7))) == (1_000, 4)


def test_observe_counts_on_from_the_remote_when_it_is_ahead() -> None:
    clock, _ = clock_at(500, last=(900, 3))
    assert unpack(clock.observe(pack(1_000, 7))) == (1_000, 8)


@pytest.mark.parametrize(("local", "remote"), [(3, 7), (7, 3), (5, 5)])
def test_observe_counts_on_from_the_larger_counter_when_local_and_remote_agree(local: int, remote: int) -> None:
    clock, _ = clock_at(500, last=(1_000, local))
    assert unpack(clock.observe(pack(1_000, remote))) == (1_000, max(local, remote) + 1)


def test_observe_counts_on_when_wall_local_and_remote_all_agree() -> None:
    clock, _ = clock_at(1_000, last=(1_000, 2))
    assert unpack(clock.observe(pack(1_000, 9))) == (1_000, 10)


def test_observe_counts_on_from_the_local_clock_when_it_equals_the_wall_clock() -> None:
    clock, _ = clock_at(1_000, last=(1_000, 2))
    assert unpack(clock.observe(pack(900, 9))) == (1_000, 3)


def test_observe_advances_the_milliseconds_when_the_remote_counter_is_full() -> None:
    clock, _ = clock_at(500, last=(900, 3))
    assert unpack(clock.observe(pack(1_000, MAX_COUNTER))) == (1_001, 0)


def test_observe_refuses_values_outside_64_bits() -> None:
    clock, _ = clock_at(1_000)
    with pytest.raises(TimestampRangeError):
        clock.observe(-1)


# the skew guard


def test_observe_accepts_a_remote_exactly_at_the_skew_limit() -> None:
    clock, _ = clock_at(1_000, max_skew_ms=200)
    assert unpack(clock.observe(pack(1_200, 4))) == (1_200, 5)


def test_observe_refuses_a_remote_beyond_the_skew_limit_and_says_by_how_much() -> None:
    clock, _ = clock_at(1_000, last=(990, 1), max_skew_ms=200)
    with pytest.raises(ClockSkewError, match=r"201 ms ahead .*limit 200 ms") as refused:
        clock.observe(pack(1_201, 0))
    assert (refused.value.skew_ms, refused.value.remote_ms, refused.value.local_ms) == (201, 1_201, 1_000)
    assert isinstance(refused.value, AmityError)


def test_a_refused_remote_leaves_the_clock_where_it_was() -> None:
    clock, _ = clock_at(1_000, last=(990, 1), max_skew_ms=200)
    with pytest.raises(ClockSkewError):
        clock.observe(pack(5_000, 0))
    assert clock.last == pack(990, 1)
    assert unpack(clock.tick()) == (1_000, 0)


def test_zero_skew_refuses_any_remote_ahead_of_the_wall_clock() -> None:
    clock, _ = clock_at(1_000, max_skew_ms=0)
    clock.observe(pack(1_000, 3))
    with pytest.raises(ClockSkewError):
        clock.observe(pack(1_001, 0))


def test_negative_skew_is_refused() -> None:
    with pytest.raises(ClockError, match="max_skew_ms"):
        HybridClock(max_skew_ms=-1)


def test_the_default_clock_follows_the_system_clock() -> None:
    stamped = physical_ms(HybridClock().tick())
    assert abs(stamped - time.time_ns() // 1_000_000) < 5_000


# properties over arbitrary histories

events = st.lists(
    st.tuples(st.integers(0, 10_000), st.one_of(st.none(), st.tuples(st.integers(0, 10_000), counters))),
    max_size=60,
)


@given(events)
def test_every_timestamp_exceeds_all_before_it_and_the_wall_clock(history: list) -> None:
    """Monotonic whatever the wall clock does; a receive lands above the remote; l >= pt."""
    wall = WallClock(0)
    clock = HybridClock(wall, max_skew_ms=10_000)
    previous = -1
    for now, remote in history:
        wall.ms = now
        stamped = clock.tick() if remote is None else clock.observe(pack(*remote))
        assert stamped > previous
        if remote is not None:
            assert stamped > pack(*remote)
        assert physical_ms(stamped) >= now
        previous = stamped


@given(events)
def test_physical_part_is_the_largest_time_seen(history: list) -> None:
    """Without counter overflow, l never runs ahead of the wall or remote times the clock met."""
    wall = WallClock(0)
    clock = HybridClock(wall, max_skew_ms=10_000)
    seen = 0
    for now, remote in history:
        wall.ms = now
        seen = max(seen, now, remote[0] if remote else 0)
        stamped = clock.tick() if remote is None else clock.observe(pack(remote[0], min(remote[1], 1_000)))
        assert physical_ms(stamped) == seen
