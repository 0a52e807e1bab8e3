"""A tool process the benchmark started and stops, watched through its Popen handle.

A child that exits stays a zombie until its parent reaps it, so its pid
cannot be reused while this handle holds it: signalling by pid is safe and
needs no command-line check. (Reading /proc/<pid>/cmdline is not a liveness
test: on this kernel it is empty for a few milliseconds after exec and
while the process exits.)
"""

import os
import subprocess
from pathlib import Path


class Child:
    """One detached tool process, output appended to a log file."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        """`env`: variables set for this process on top of the benchmark's own."""
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True, env={**os.environ, **(env or {})})

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float) -> int:
        """SIGTERM, then SIGKILL if it has not exited after `timeout_s`; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)
