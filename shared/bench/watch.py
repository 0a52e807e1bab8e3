"""Timing a backlog drain from the outside: destination end offsets and the tool's CPU, polled together.

The clock starts at the last poll that saw nothing new in the destination and
stops at the poll that saw the last record, so startup is left out and the
rate errs low by at most one poll interval. A transactional destination holds
commit markers as well as records, so there the drain ends when the end
offsets stop moving and a read_committed count finds every record; the end
time is when they last moved (the last commit).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from amity.bench.data import EndOffsets, count_committed
from amity.bench.meter import ProcessMeter
from amity.errors import AmityError

POLL_S = 0.1
SETTLE_S = 2.0

Progress = Callable[[int, int], None]


class DrainFailed(AmityError):
    """The tool stopped, or stopped making progress, before the destination held every record."""


@dataclass(frozen=True, slots=True)
class Stream:
    """Records expected in one destination topic."""

    bootstrap: str
    topic: str
    expected: int


@dataclass(frozen=True, slots=True)
class Drained:
    records: int
    seconds: float
    startup_s: float
    cpu_s: float | None


class DrainWatch:
    """Polls the destination topics of one drain until they hold every expected record."""

    def __init__(self, streams: list[Stream], exactly_once: bool, meter: ProcessMeter | None,
                 alive: Callable[[], bool], progress: Progress = lambda done, total: None) -> None:
        self.streams = streams
        self.exactly_once = exactly_once
        self.meter = meter
        self.alive = alive
        self.progress = progress
        self.expected = sum(s.expected for s in streams)
        self._offsets = [EndOffsets(s.bootstrap, [s.topic]) for s in streams]
        self._baseline = [o.total() for o in self._offsets]
        self._committed_baseline = [count_committed(s.bootstrap, s.topic) if exactly_once and base else 0
                                    for s, base in zip(streams, self._baseline)]

    def run(self, started_at: float, stall_s: float) -> Drained:
        """Poll until done; `started_at` (time.monotonic) is when the tool was launched."""
        start_t, start_cpu = started_at, self._cpu()
        change_t, change_cpu, last = started_at, start_cpu, 0
        counted_at = -1
        while True:
            now, visible, cpu = time.monotonic(), self._visible(), self._cpu()
            if visible == 0:
                start_t, start_cpu = now, cpu
            if visible != last:
                change_t, change_cpu, last = now, cpu, visible
                self.progress(min(visible, self.expected), self.expected)
            if visible >= self.expected and not self.exactly_once:
                return self._drained(visible, start_t, now, started_at, start_cpu, cpu)
            if visible >= self.expected and now - change_t >= SETTLE_S and counted_at != visible:
                counted_at = visible
                records = self._committed()
                if records >= self.expected:
                    return self._drained(records, start_t, change_t, started_at, start_cpu, change_cpu)
            if not self.alive():
                raise DrainFailed(f"the tool exited with {visible} of {self.expected} records in the destination")
            if now - change_t > stall_s:
                raise DrainFailed(f"no progress for {stall_s:.0f}s at {visible} of {self.expected} records")
            time.sleep(POLL_S)

    def _visible(self) -> int:
        return sum(o.total() - base for o, base in zip(self._offsets, self._baseline))

    def _committed(self) -> int:
        return sum(count_committed(s.bootstrap, s.topic) - base
                   for s, base in zip(self.streams, self._committed_baseline))

    def _cpu(self) -> float | None:
        return self.meter.read().cpu_s if self.meter is not None else None

    @staticmethod
    def _drained(records: int, start_t: float, end_t: float, launched: float,
                 start_cpu: float | None, end_cpu: float | None) -> Drained:
        cpu = end_cpu - start_cpu if start_cpu is not None and end_cpu is not None else None
        return Drained(records, max(end_t - start_t, 1e-6), start_t - launched, cpu)
