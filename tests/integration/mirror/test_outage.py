"""A destination that goes down: the link waits, reports itself unhealthy, and resumes without loss."""

import json
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from amity.dev.environment import DevEnvironment
from amity.regions import Region
from tests.support import cluster
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, wait_for


@pytest.fixture
def spare_region(regions) -> Region:
    """Region `sa`, started for a test that kills it; the session's teardown stops it with the rest."""
    state = DevEnvironment(cluster.test_settings()).up(["sa"])["sa"]
    return Region(name="sa", bootstrap=state.bootstrap, redis=state.redis)


def kill_kafka(region: str) -> None:
    state = json.loads((cluster.test_settings().region_dir(region) / "region.json").read_text())
    os.kill(state["kafka_pid"], signal.SIGKILL)


def test_destination_outage_is_waited_out_without_loss(regions, spare_region: Region, topic, tmp_path: Path) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=2)
    with MirrorProcess(tmp_path, {"us": us, "sa": spare_region}, [{"source": "us", "destination": "sa", "include": [topic]}]) as worker:
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(2000)])
        wait_for(lambda: worker.topic_stats("us-to-sa", topic).get("replicated") == 2000, message="first 2000")
        wait_for(lambda: len(read_all(spare_region.bootstrap, topic)) == 2000, message="first 2000 in sa")
        kill_kafka("sa")
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(2000, 5000)])
        wait_for(lambda: worker.stats().get("links", {}).get("us-to-sa", {}).get("healthy") is False,
                 timeout_s=60, message="link reported unhealthy")
        DevEnvironment(cluster.test_settings()).up(["sa"])
        values = wait_for(lambda: _all(spare_region, topic, 5000), timeout_s=120, message="5000 in sa")
        wait_for(lambda: worker.stats().get("links", {}).get("us-to-sa", {}).get("healthy") is True,
                 message="link healthy again")
        assert worker.alive()
    assert set(values) == {str(n).encode() for n in range(5000)}


def _all(region: Region, topic: str, total: int) -> Counter | None:
    """The topic's values once it holds `total` distinct ones; None while the restarted broker is not ready yet
    (it answers NOT_LEADER_FOR_PARTITION until its partitions have a leader again)."""
    try:
        values = Counter(m.value() for m in read_all(region.bootstrap, topic))
    except KafkaException as exc:
        if not exc.args[0].retriable():
            raise
        return None
    return values if len(values) >= total else None
