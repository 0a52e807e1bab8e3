"""Planned failover while both regions are up: translated from the group's live offsets, exactly."""

import uuid
from pathlib import Path

from amity.regions import Region
from tests.integration.failover.support import CheckpointerProcess, committed, consume, duplicates, move
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, wait_for


def test_planned_failover_resumes_exactly_where_the_group_stopped(regions: dict[str, Region], topic: str,
                                                                  tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(us.bootstrap, topic, partitions=3)
    links = [{"source": "us", "destination": "eu", "include": [topic]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group, sync=False):
        produce(us.bootstrap, topic, [(f"k{n % 17}".encode(), f"us-{n}".encode()) for n in range(3000)])
        wait_for(lambda: len(read_all(eu.bootstrap, topic)) == 3000, timeout_s=90, message="3000 records in eu")
        in_us = consume(us, group, topic, limit=1234)

        plan = move("failover", group, topic, "us", "eu", mirror.config, "--dry-run")
        assert plan["basis"] == "live" and plan["committed"] is False
        assert committed(eu, group, topic, 3) == {}

        report = move("failover", group, topic, "us", "eu", mirror.config)
        assert report["committed"] is True
        assert {p["partition"]: p["offset"] for p in report["partitions"]} == {0: 0, 1: 0, 2: 0} | committed(
            us, group, topic, 3)
        in_eu = consume(eu, group, topic)

    every = {m.value() for m in read_all(eu.bootstrap, topic)}
    assert every - set(in_us) - set(in_eu) == set()
    assert duplicates(in_us, in_eu) == 0
    assert sum(p["redelivered"] for p in report["partitions"]) == 0
