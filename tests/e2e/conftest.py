"""A real coordinator process on the session's regions, driven through the `amity` CLI."""

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from amity.regions import Region
from tests.integration.coordinator.server import coordinator_process

TOKEN = "e2e-token-0123456789abcdef"


class Cli:
    """Runs `amity ...` as a user would, against one coordinator."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.env = {**os.environ, "AMITY_URL": url, "AMITY_API_TOKEN": TOKEN}

    def __call__(self, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True,
                                env=self.env, timeout=60)
        if expect_ok:
            assert result.returncode == 0, f"amity {' '.join(args)}: {result.stderr}"
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def coordinator(regions: dict[str, Region], tmp_path: Path) -> Iterator[Cli]:
    namespace = f"amity:e2e:{uuid.uuid4().hex[:10]}:"
    env = {"AMITY_REDIS_URL": regions["us"].redis, "AMITY_NAMESPACE": namespace, "AMITY_API_TOKEN": TOKEN,
           "AMITY_HEARTBEAT_INTERVAL_S": "0.5", "AMITY_WORKER_TIMEOUT_S": "3", "AMITY_HEALTH_INTERVAL_S": "1"}
    with coordinator_process(env, tmp_path / "coordinator.log") as url:
        yield Cli(url)
    client = redis.Redis.from_url(regions["us"].redis)
    keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
    if keys:
        client.delete(*keys)
