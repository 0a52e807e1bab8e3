"""Hybrid logical clock (Kulkarni et al., 2014, "Logical Physical Clocks").

A timestamp is one 64-bit integer: 48 bits of wall-clock milliseconds (l)
over a 16-bit logical counter (c). Packing makes the clock cheap to carry in a
header and to compare: the order of packed integers is the lexicographic order
of (l, c), and a counter overflow carries into the milliseconds by plain
integer addition, so it needs no special case.

The wall clock is injected so tests drive time without sleeping.
"""

import time
from collections.abc import Callable

from amity.errors import AmityError

LOGICAL_BITS = 16
MAX_COUNTER = (1 << LOGICAL_BITS) - 1
MAX_MS = (1 << 48) - 1
MAX_HLC = (1 << 64) - 1


class ClockError(AmityError):
    """A hybrid timestamp cannot be built or accepted."""


class TimestampRangeError(ClockError, ValueError):
    """A timestamp or one of its parts does not fit the 48+16-bit layout."""


class ClockSkewError(ClockError):
    """A remote timestamp is further ahead of the local wall clock than the skew allowed.

    Accepting it would drag this region's clock (and, through it, every
    region's) forward for good, and let the fast region win every race.
    """

    def __init__(self, remote_ms: int, local_ms: int, max_skew_ms: int) -> None:
        self.remote_ms = remote_ms
        self.local_ms = local_ms
        self.skew_ms = remote_ms - local_ms
        self.max_skew_ms = max_skew_ms
        super().__init__(
            f"remote timestamp is {self.skew_ms} ms ahead of the local clock "
            f"(limit {max_skew_ms} ms): check NTP on the writing region, or raise max_skew_ms "
            "if the skew is expected"
        )


def pack(ms: int, counter: int) -> int:
    """The 64-bit timestamp for wall-clock `ms` and logical `counter`."""
    if not 0 <= ms <= MAX_MS:
        raise TimestampRangeError(f"physical time {ms} ms is outside 0..{MAX_MS}")
    if not 0 <= counter <= MAX_COUNTER:
        raise TimestampRangeError(f"logical counter {counter} is outside 0..{MAX_COUNTER}")
    return ms << LOGICAL_BITS | counter


def unpack(hlc: int) -> tuple[int, int]:
    """(physical ms, logical counter) of a packed timestamp."""
    _check(hlc)
    return hlc >> LOGICAL_BITS, hlc & MAX_COUNTER


def physical_ms(hlc: int) -> int:
    """The wall-clock milliseconds part of a packed timestamp."""
    return hlc >> LOGICAL_BITS


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch, from the system clock."""
    return time.time_ns() // 1_000_000


def _check(hlc: int) -> None:
    if not 0 <= hlc <= MAX_HLC:
        raise TimestampRangeError(f"hybrid timestamp {hlc} does not fit in 64 bits")


class HybridClock:
    """One region's (or one stamper's) hybrid logical clock.

    In packed form the paper's rules become maxima: a local event takes
    max((pt, 0), last + 1), a receive takes max((pt, 0), last + 1, remote + 1).
    Each case of the paper (l kept, l taken from the remote, l taken from pt,
    all equal) is one of the terms winning. The result is strictly above
    everything the clock has issued or observed, whatever the wall clock does.
    """

    __slots__ = ("_now_ms", "_max_skew_ms", "_last")

    def __init__(self, now_ms: Callable[[], int] = wall_clock_ms, max_skew_ms: int = 60_000, last: int = 0) -> None:
        if max_skew_ms < 0:
            raise ClockError(f"max_skew_ms must be zero or more, not {max_skew_ms}")
        _check(last)
        self._now_ms = now_ms
        self._max_skew_ms = max_skew_ms
        self._last = last

    @property
    def last(self) -> int:
        """The latest timestamp issued or observed, without advancing the clock."""
        return self._last

    def tick(self) -> int:
        """Timestamp a local or send event."""
        return self._advance(max(self._physical(), self._last + 1))

    def observe(self, remote: int) -> int:
        """Timestamp the receipt of `remote`, after checking it against the skew guard.

        Raises ClockSkewError, leaving the clock unchanged, when the remote's
        physical part is more than max_skew_ms ahead of the local wall clock.
        """
        _check(remote)
        now = self._now_ms()
        remote_ms = physical_ms(remote)
        if remote_ms > now + self._max_skew_ms:
            raise ClockSkewError(remote_ms, now, self._max_skew_ms)
        return self._advance(max(pack(now, 0), self._last + 1, remote + 1))

    def _physical(self) -> int:
        return pack(self._now_ms(), 0)

    def _advance(self, hlc: int) -> int:
        _check(hlc)
        self._last = hlc
        return hlc
