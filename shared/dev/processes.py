"""Start and stop the local servers by pid, and nothing else.

A pid file alone is not proof: the pid may have been reused by an unrelated
process after a crash. Every check therefore also compares the process's
command line with a marker (the server's own config path) before treating it
as ours or signalling it.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def is_ours(pid: int, marker: str) -> bool:
    """True when `pid` is alive and its command line contains `marker`."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
    return not zombie and marker in cmdline


def has_exited(pid: int) -> bool:
    """True when a process this one started has exited.

    Used while a server starts: its command line is not a reliable marker then,
    since redis-server rewrites its process title in place and a read of
    /proc/<pid>/cmdline can catch it half-written.
    """
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False
    return done == pid


def spawn(argv: list[str], log_path: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Start a server detached from our session, output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, start_new_session=True, env=env,
        )
    return proc.pid


def stop(pid: int, marker: str, timeout_s: float = 20.0) -> bool:
    """SIGTERM our process, SIGKILL it if it lingers; False if it was not ours or not alive."""
    if not is_ours(pid, marker):
        return False
    _signal(pid, signal.SIGTERM)
    if not _wait_gone(pid, marker, timeout_s):
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, marker, 5.0)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, marker: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not is_ours(pid, marker):
            return True
        time.sleep(0.1)
    return False


def _reap(pid: int) -> None:
    """Collect the exit status when the server is our own child (it would stay a zombie otherwise)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def port_in_use(port: int) -> bool:
    """True when something already listens on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
