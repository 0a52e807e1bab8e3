"""Timing a backlog drain from the outside: destination end offsets and the tool's CPU, polled together.

The clock starts at the last poll that saw nothing new in the destination and
stops at the poll that saw the last record, so startup is left out and the
rate errs low by at most one poll interval. A transactional destination holds
commit markers as well as records, so there the drain ends when the end
offsets stop moving and a read_committed count finds every record; the end
time is when they last moved (the last commit). A tool under a conflict rule
does not write the versions its resolver finds stale; it reports how many
(`withheld`), and the drain is over when written plus withheld covers every
source record, timed to the last write.

A tool may still be working after the last record is visible: Amity with
the same topic names both ways reads back every record it wrote and drops it
as a loop. `wait_idle` waits until the tool's own CPU use falls to almost
nothing, so the CPU a backlog cost is counted in full and the latency probe
starts on an idle tool, not behind a backlog.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from amity.bench.data import EndOffsets, count_committed
from amity.bench.meter import ProcessMeter
from amity.errors import AmityError

POLL_S = 0.1
SETTLE_S = 2.0
IDLE_POLL_S = 0.5
IDLE_WINDOW_S = 2.0
IDLE_CORES = 0.1

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
    withheld: int
    seconds: float
    startup_s: float
    ended_at: float
    start_cpu_s: float | None = None


@dataclass(frozen=True, slots=True)
class Idle:
    """When the tool went idle, and its CPU time then; `reached` is False when it never did before the timeout."""

    at: float
    cpu_s: float
    reached: bool


def wait_idle(meter: ProcessMeter, alive: Callable[[], bool], timeout_s: float) -> Idle:
    """Wait until the tool used under IDLE_CORES of a core over the last IDLE_WINDOW_S or more; idle from its start."""
    samples: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        now, cpu = time.monotonic(), meter.read().cpu_s
        samples.append((now, cpu))
        old_enough = [(t, c) for t, c in samples if now - t >= IDLE_WINDOW_S]
        if old_enough:
            first_t, first_cpu = old_enough[-1]
            if cpu - first_cpu <= IDLE_CORES * (now - first_t):
                return Idle(first_t, first_cpu, True)
        if now > deadline or not alive():
            return Idle(now, cpu, False)
        time.sleep(IDLE_POLL_S)


class DrainWatch:
    """Polls the destination topics of one drain until they hold every expected record."""

    def __init__(self, streams: list[Stream], exactly_once: bool, meter: ProcessMeter | None,
                 alive: Callable[[], bool], progress: Progress = lambda done, total: None,
                 withheld: Callable[[], int] | None = None) -> None:
        self.streams = streams
        self.exactly_once = exactly_once
        self.meter = meter
        self.alive = alive
        self.progress = progress
        self.withholds = withheld is not None
        self.withheld = withheld or (lambda: 0)
        self._counted = (-1, 0)
        self.expected = sum(s.expected for s in streams)
        self._offsets = [EndOffsets(s.bootstrap, [s.topic]) for s in streams]
        self._baseline = [o.total() for o in self._offsets]
        self._committed_baseline = [count_committed(s.bootstrap, s.topic) if exactly_once and base else 0
                                    for s, base in zip(streams, self._baseline)]

    def run(self, started_at: float, stall_s: float) -> Drained:
        """Poll until done; `started_at` (time.monotonic) is when the tool was launched."""
        start_t, start_cpu = started_at, self._cpu()
        change_t, last = started_at, 0
        while True:
            now, visible, cpu = time.monotonic(), self._visible(), self._cpu()
            if visible == 0:
                start_t, start_cpu = now, cpu
            if visible != last:
                change_t, last = now, visible
                self.progress(min(visible, self.expected), self.expected)
            if not self._settles and visible >= self.expected:
                return self._drained(visible, 0, start_t, now, started_at, start_cpu)
            if self._settles and visible and now - change_t >= SETTLE_S:
                withheld = self.withheld()
                if visible + withheld >= self.expected:
                    records = self._committed(visible) if self.exactly_once else visible
                    if records + withheld >= self.expected:
                        return self._drained(records, withheld, start_t, change_t, started_at, start_cpu)
            if not self.alive():
                raise DrainFailed(f"the tool exited with {visible} of {self.expected} records in the destination")
            if now - change_t > stall_s:
                raise DrainFailed(f"no progress for {stall_s:.0f}s at {visible} of {self.expected} records "
                                  f"in the destination ({self.withheld()} withheld by the tool's conflict rule)")
            time.sleep(POLL_S)

    @property
    def _settles(self) -> bool:
        """Whether the end is found by the destination standing still rather than by a count of records."""
        return self.exactly_once or self.withholds

    def _visible(self) -> int:
        return sum(o.total() - base for o, base in zip(self._offsets, self._baseline))

    def _committed(self, visible: int) -> int:
        """Records a read_committed consumer finds, counted again only when the end offsets moved."""
        if self._counted[0] != visible:
            self._counted = (visible, sum(count_committed(s.bootstrap, s.topic) - base
                                          for s, base in zip(self.streams, self._committed_baseline)))
        return self._counted[1]

    def _cpu(self) -> float | None:
        return self.meter.read().cpu_s if self.meter is not None else None

    @staticmethod
    def _drained(records: int, withheld: int, start_t: float, end_t: float, launched: float,
                 start_cpu: float | None) -> Drained:
        return Drained(records, withheld, max(end_t - start_t, 1e-6), start_t - launched, end_t, start_cpu)
