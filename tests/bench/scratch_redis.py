"""A redis-server of the benchmark scripts' own: no persistence, on a loopback port, stopped by pid."""

import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from amity.dev.redis import redis_server


@contextmanager
def scratch_redis(port: int) -> Iterator[subprocess.Popen]:
    """The server's process, once it answers; stopped on the way out, however the block ends."""
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen([redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no", "--dir", data], stdout=subprocess.DEVNULL)
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            yield server
        finally:
            server.terminate()
            server.wait(10)
