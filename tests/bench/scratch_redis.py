"""A redis-server of a benchmark script's or a test's own: no persistence, on a loopback port, stopped by pid."""

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from amity.dev.redis import redis_server

START_S = 5.0


@contextmanager
def scratch_redis(port: int, module: Path | None = None) -> Iterator[subprocess.Popen]:
    """The server's process, once it answers, with `module` loaded if given; stopped on the way out, however the
    block ends."""
    with tempfile.TemporaryDirectory() as data:
        loads = ["--loadmodule", str(module)] if module is not None else []
        server = subprocess.Popen([redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", data, *loads], stdout=subprocess.DEVNULL)
        try:
            client, deadline = redis.Redis(port=port), time.monotonic() + START_S
            while not _answers(client):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the scratch redis-server on port {port} did not answer within "
                                       f"{START_S:.0f} s (exit code {server.poll()}; the port may be taken)")
                time.sleep(0.05)
            yield server
        finally:
            server.terminate()
            server.wait(10)


def _answers(client: redis.Redis) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False
