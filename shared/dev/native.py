"""The amitystate Redis module (amity/native): built with the machine's C compiler for the local regions' Redis.

Loaded, it runs the version state's operations in compiled code instead of
Lua (amity.state.Engine); without a C compiler the regions' Redis runs the
Lua scripts, which every Redis has.
"""

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from amity.errors import DevEnvironmentError

SOURCE = Path(__file__).resolve().parents[1] / "native" / "amity_state.c"
FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")
BUILD_TIMEOUT_S = 120


def compiler() -> str | None:
    return shutil.which("cc") or shutil.which("gcc")


def ensure_module(target: Path) -> Path | None:
    """The module built at `target` (again only when its source changed); None without a C compiler."""
    if compiler() is None:
        return None
    if target.exists() and target.stat().st_mtime >= SOURCE.stat().st_mtime:
        return target
    return build(target)


def build(target: Path, extra_flags: Sequence[str] = ()) -> Path:
    """Compile the module into `target`, replaced whole: a Redis starting meanwhile loads the old build or the new,
    never half of one; `extra_flags` after the usual ones, e.g. a sanitizer's."""
    cc = compiler()
    if cc is None:
        raise DevEnvironmentError("no C compiler (cc or gcc) to build the amitystate Redis module: install gcc")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")  # two builders never share one
    result = subprocess.run([cc, *FLAGS, *extra_flags, "-o", str(partial), str(SOURCE), "-lm"], capture_output=True,
                            text=True, timeout=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise DevEnvironmentError(f"building the Redis module {SOURCE} with {cc} failed: {result.stderr[-1500:]}")
    partial.replace(target)
    return target
