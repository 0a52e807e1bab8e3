"""Apache Kafka's jars, fetched from Maven Central with Maven into a cache.

The broker, MirrorMaker 2 and the perf tools all run from this one classpath.
"""

import hashlib
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from amity.errors import DevEnvironmentError

STAMP = ".complete"


def classpath(jar_dir: Path) -> str:
    """The java -cp value for the cached jars."""
    return str(jar_dir / "*")


def jars_ready(jar_dir: Path, pom: Path) -> bool:
    """True when the cache was filled from this very pom (a changed pom fetches again)."""
    stamp = jar_dir / STAMP
    return stamp.exists() and pom.exists() and stamp.read_text().strip() == _digest(pom)


def _digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def ensure_jars(jar_dir: Path, pom: Path, on_line: Callable[[str], None] = lambda line: None) -> Path:
    """Fetch the jars once; later calls return at once."""
    if jars_ready(jar_dir, pom):
        return jar_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise DevEnvironmentError("Maven (mvn) is not on PATH: install it (apt-get install maven) to fetch Kafka's jars")
    if not pom.exists():
        raise DevEnvironmentError(f"the Kafka pom {pom} is missing: restore deploy/local/pom.xml")
    # Jars of an older pom would stay on the classpath beside the new ones (two slf4j-api versions, say).
    shutil.rmtree(jar_dir, ignore_errors=True)
    jar_dir.mkdir(parents=True)
    argv = [mvn, "-B", "-f", str(pom), "dependency:copy-dependencies", f"-DoutputDirectory={jar_dir}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = (tail + [line.rstrip()])[-20:]
        on_line(line.rstrip())
    if proc.wait() != 0:
        raise DevEnvironmentError("Maven could not fetch Kafka's jars:\n" + "\n".join(tail))
    (jar_dir / STAMP).write_text(_digest(pom) + "\n")
    return jar_dir
