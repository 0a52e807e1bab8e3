"""`amity bench --state-cpus`: which CPUs are set aside for Redis, and that processes really move (real child
processes, read back from the kernel; no servers)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amity.bench import placement
from amity.errors import ConfigError

CPUS = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="setting CPUs aside needs two CPUs to use")
# A child with a second thread, both asleep: `move` must move each.
TWO_THREADS = "import threading, time; threading.Thread(target=time.sleep, args=(60,)).start(); time.sleep(60)"


@given(st.sets(st.integers(0, 127), min_size=2, max_size=16), st.data())
def test_redis_gets_the_highest_numbered_cpus_and_the_others_keep_the_rest(available: set[int], data) -> None:
    state_cpus = data.draw(st.integers(1, len(available) - 1))
    others, reserved = placement.split(available, state_cpus)
    assert len(reserved) == state_cpus
    assert sorted(others + reserved) == sorted(available)
    assert max(others) < min(reserved)


@pytest.mark.parametrize("state_cpus", [2, 3])
def test_setting_every_cpu_aside_is_refused(state_cpus: int) -> None:
    with pytest.raises(ConfigError, match="leaves no CPU for Kafka and the mirrors"):
        placement.split([0, 1], state_cpus)


def _threads_cpus(pid: int) -> list[set[int]]:
    return [os.sched_getaffinity(int(task.name)) for task in Path(f"/proc/{pid}/task").iterdir()]


@needs_two_cpus
def test_processes_started_inside_run_on_the_others_and_the_caller_gets_its_cpus_back() -> None:
    before = os.sched_getaffinity(0)
    with placement.others_apart(1) as reserved:
        child = subprocess.Popen(["sleep", "60"])
        try:
            assert reserved == [CPUS[-1]]
            assert os.sched_getaffinity(child.pid) == set(CPUS[:-1])
        finally:
            child.kill()
            child.wait()
    assert os.sched_getaffinity(0) == before


def test_nothing_moves_without_cpus_set_aside() -> None:
    before = os.sched_getaffinity(0)
    with placement.others_apart(0) as reserved:
        assert reserved == [] and os.sched_getaffinity(0) == before


@needs_two_cpus
def test_a_moved_process_runs_every_thread_on_the_cpus_set_aside_as_read_back() -> None:
    child = subprocess.Popen([sys.executable, "-c", TWO_THREADS])
    try:
        while len(list(Path(f"/proc/{child.pid}/task").iterdir())) < 2:
            assert child.poll() is None
            time.sleep(0.01)
        placement.move([child.pid], [CPUS[-1]])
        assert _threads_cpus(child.pid) == [{CPUS[-1]}, {CPUS[-1]}]
        where = placement.read_back([child.pid])
        assert where.state_cpus == [CPUS[-1]] and where.other_cpus == CPUS
    finally:
        child.kill()
        child.wait()
