"""The test session's local regions: started once, shared by every test and xdist worker.

Workers take a file lock and write their pids in; the first starts the regions
through the launcher (`amity dev up`), the last one out stops them by pid and
checks that nothing it started is still alive. Pids, not a count: a session that
was killed leaves its pid behind, which the next session sees is dead, where a
count would stay up by one and keep every later session from stopping the regions.
"""

import fcntl
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from amity.dev.environment import DevEnvironment
from amity.dev.settings import REPO_ROOT, DevSettings
from amity.regions import Region

TEST_REGIONS = ["us", "eu", "ap"]
# Below Linux's ephemeral range (32768-60999): a client reconnecting to a stopped broker could otherwise
# be handed the broker's own port and hold it, and the broker would fail to bind when it restarts.
TEST_BASE_PORT = 24090


def test_settings() -> DevSettings:
    """Its own home and ports, so a developer's `make demo` regions are never touched.

    AMITY_TEST_BASE_PORT moves the whole session, e.g. to run a second suite side by side; the home moves with
    it, or the second session would take over the first one's regions, data directories and pid files.
    """
    base_port = int(os.environ.get("AMITY_TEST_BASE_PORT", TEST_BASE_PORT))
    name = "test" if base_port == TEST_BASE_PORT else f"test-{base_port}"
    return DevSettings(home=REPO_ROOT / ".amity" / name, base_port=base_port)


@contextmanager
def _locked(home: Path) -> Iterator[Path]:
    home.mkdir(parents=True, exist_ok=True)
    with open(home / "session.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield home / "session.users"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def live_users(path: Path) -> list[int]:
    """The pids written into the session that are still running (a file from before pids were kept: none)."""
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [pid for pid in pids if _running(pid)] if isinstance(pids, list) else []


def _running(pid: object) -> bool:
    if type(pid) is not int or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(settings: DevSettings) -> dict[str, Region]:
    with _locked(settings.home) as users:
        states = DevEnvironment(settings).up(TEST_REGIONS)
        users.write_text(json.dumps([*live_users(users), os.getpid()]))
    return {name: Region(name=name, bootstrap=s.bootstrap, redis=s.redis) for name, s in states.items()}


def release(settings: DevSettings) -> list[str]:
    """Leave the session; the last worker stops the regions and returns what is still alive (must be empty)."""
    with _locked(settings.home) as users:
        remaining = [pid for pid in live_users(users) if pid != os.getpid()]
        users.write_text(json.dumps(remaining))
        if remaining:
            return []
        env = DevEnvironment(settings)
        env.down()
        return [f"{row.region} {row.role} pid {row.pid}" for row in env.status() if row.alive]


def region_pid(region: str, role: str) -> int:
    """The pid of a test region's `kafka` or `redis`, as its launcher recorded it."""
    state = json.loads((test_settings().region_dir(region) / "region.json").read_text())
    return state[f"{role}_pid"]


def kill_kafka(region: str) -> None:
    """The test region's broker killed outright (SIGKILL): connections refused at once, as a crashed host."""
    os.kill(region_pid(region, "kafka"), signal.SIGKILL)


@contextmanager
def frozen(*pids: int) -> Iterator[None]:
    """The processes stopped (SIGSTOP) for the block: they keep their sockets and answer nothing, as servers cut
    off by a network partition do. Always continued after it, or the session could not stop them."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
