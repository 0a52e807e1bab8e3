"""CPU time and peak memory of a tool's process, read from /proc.

CPU is utime + stime of the process and of every live descendant, plus
cutime + cstime (children that already exited and were waited for), so a
launcher script or a forked helper is counted with the tool. Peak memory is
the highest VmHWM seen: the kernel's own high-water mark of resident memory,
polled because it disappears with the process.

Descendants are found by scanning /proc for parent pids (not every kernel has
/proc/<pid>/task/<tid>/children), so the scan is repeated only every few
seconds: the meter runs on the same two cores as the tool it measures.
"""

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESCAN_S = 2.0


@dataclass(frozen=True, slots=True)
class Reading:
    cpu_s: float
    hwm_kib: int


class ProcessMeter:
    """Samples the process trees of one tool (its processes and their children); `peak_rss_mib` keeps the largest
    high-water mark seen."""

    def __init__(self, pids: int | list[int]) -> None:
        self.roots = [pids] if isinstance(pids, int) else list(pids)
        self._peak_kib = 0
        self._last_cpu_s = 0.0
        self._tree: list[int] = list(self.roots)
        self._scanned_at = float("-inf")

    def read(self) -> Reading:
        """The tree's CPU so far and its current high-water mark; the last CPU value once the process is gone."""
        now = time.monotonic()
        if now - self._scanned_at > RESCAN_S:
            self._tree = [found for root in self.roots for found in (root, *descendants(root))]
            self._scanned_at = now
        pids = self._tree
        cpu_ticks = 0
        hwm = 0
        alive = False
        for pid in pids:
            stat = _stat_fields(pid)
            if stat is None:
                continue
            alive = True
            cpu_ticks += stat[11] + stat[12] + (stat[13] + stat[14] if pid in self.roots else 0)
            hwm += _hwm_kib(pid)
        if alive:
            self._last_cpu_s = cpu_ticks / CLOCK_TICKS
        self._peak_kib = max(self._peak_kib, hwm)
        return Reading(self._last_cpu_s, hwm)

    @property
    def peak_rss_mib(self) -> float:
        return self._peak_kib / 1024


def descendants(pid: int) -> list[int]:
    """Every live process below `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(int(entry.name))
        if stat is not None:
            parents.setdefault(stat[1], []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    while frontier:
        for child in parents.get(frontier.pop(), []):
            found.append(child)
            frontier.append(child)
    return found


def _stat_fields(pid: int) -> list[int] | None:
    """Numeric fields of /proc/<pid>/stat after the command name (field 3 onwards, state as 0)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = text.rsplit(")", 1)[1].split()
    if rest[0] == "Z":
        return None
    return [0, *(int(v) for v in rest[1:])]


def _hwm_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0
