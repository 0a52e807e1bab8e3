"""Telling our own servers' processes apart: alive, exited, ours."""

import subprocess
import time

from amity.dev import processes


def test_has_exited_tells_a_running_child_from_an_exited_one() -> None:
    running = subprocess.Popen(["sleep", "30"])
    done = subprocess.Popen(["true"])
    try:
        time.sleep(0.3)
        assert not processes.has_exited(running.pid)
        assert processes.has_exited(done.pid)
    finally:
        running.kill()
        running.wait()


def test_is_ours_needs_the_marker_in_the_command_line() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        deadline = time.monotonic() + 5
        while not processes.is_ours(proc.pid, "sleep 30") and time.monotonic() < deadline:
            time.sleep(0.05)  # until the child has exec'd: before, its command line is its parent's
        assert processes.is_ours(proc.pid, "sleep 30")
        assert not processes.is_ours(proc.pid, "kafka.Kafka")
    finally:
        proc.kill()
        proc.wait()
    assert not processes.is_ours(proc.pid, "sleep 30")
