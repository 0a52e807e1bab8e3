"""The machine a benchmark ran on, read from the machine itself."""

import os
import platform
import subprocess
from pathlib import Path

from amity.bench.results import Machine
from amity.dev.kafka import java
from amity.dev.settings import KAFKA_VERSION


def describe() -> Machine:
    return Machine(
        nproc=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        memory_gib=round(_mem_total_kib() / 1024 / 1024, 1),
        kernel=platform.release(),
        python=platform.python_version(),
        java=_java_version(),
        kafka=KAFKA_VERSION,
    )


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_kib() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _java_version() -> str:
    result = subprocess.run([java(), "-version"], capture_output=True, text=True, timeout=30)
    first = (result.stderr or result.stdout).strip().splitlines()
    return first[0] if first else "unknown"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
