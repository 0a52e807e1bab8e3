"""Which CPUs the benchmark's processes run on: with `--state-cpus N`, the regions' Redis servers alone on N of them.

A deployment usually gives each region's Redis a host of its own, where the
version state's work does not take CPU from the brokers and the mirror. On one
machine the closest is CPUs of its own: the run's main thread moves to the
other CPUs before it starts anything, so every process it starts (brokers,
Redis, mirrors, MirrorMaker 2, load) inherits them, and each Redis server is
then moved, every thread of it, to the CPUs set aside.
"""

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from amity.bench.results import Placement
from amity.errors import ConfigError


def split(available: Iterable[int], state_cpus: int) -> tuple[list[int], list[int]]:
    """(CPUs for every other process, CPUs for the Redis servers): Redis gets the highest-numbered."""
    cpus = sorted(available)
    if state_cpus >= len(cpus):
        raise ConfigError(f"--state-cpus {state_cpus} leaves no CPU for Kafka and the mirrors: this process may use "
                          f"{len(cpus)} ({', '.join(map(str, cpus))}); set aside fewer")
    kept = len(cpus) - state_cpus
    return cpus[:kept], cpus[kept:]


@contextmanager
def others_apart(state_cpus: int) -> Iterator[list[int]]:
    """Run the block's process starts on the CPUs left once `state_cpus` are set aside; yields those set aside
    (none for 0, and nothing moves). The calling thread's CPUs are restored after."""
    if not state_cpus:
        yield []
        return
    before = os.sched_getaffinity(0)
    others, reserved = split(before, state_cpus)
    os.sched_setaffinity(0, others)
    try:
        yield reserved
    finally:
        os.sched_setaffinity(0, before)


def move(pids: Iterable[int], cpus: list[int]) -> None:
    """Move every thread of each process to `cpus` (a process's threads each keep the CPUs they started with)."""
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            os.sched_setaffinity(int(task.name), cpus)


def read_back(state_pids: Iterable[int]) -> Placement:
    """Where the Redis servers and this thread (whose CPUs every process it starts inherits) run, as the kernel
    says: what the results record."""
    state = sorted(set().union(*(os.sched_getaffinity(pid) for pid in state_pids)))
    return Placement(state_cpus=state, other_cpus=sorted(os.sched_getaffinity(0)))
