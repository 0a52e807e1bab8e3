"""Continuous checkpointing (`amity checkpoint run`): translated offsets follow the group into other regions.

They are written into a region's group only while it has no members there and
only over offsets Amity wrote itself; Amity's own offsets are never exported
back, so active-active links cannot echo a group between regions.
"""

import threading
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer

from amity.regions import Region
from tests.integration.failover.support import CheckpointerProcess, checkpoint, committed, consume
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, wait_for

SETTLE_S = 4.0


def records(prefix: str, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{n % 11}".encode(), f"{prefix}-{n}".encode()) for n in range(start, stop)]


def test_offsets_follow_the_group_into_an_idle_region(regions: dict[str, Region], topic: str,
                                                      tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(us.bootstrap, topic, partitions=2)
    links = [{"source": "us", "destination": "eu", "include": [topic]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        produce(us.bootstrap, topic, records("us", 0, 1000))
        wait_for(lambda: len(read_all(eu.bootstrap, topic)) == 1000, timeout_s=90, message="1000 in eu")
        consume(us, group, topic, limit=300)
        wait_for(lambda: committed(eu, group, topic, 2) == _filled(committed(us, group, topic, 2)),
                 timeout_s=60, message="first sync")
        consume(us, group, topic, limit=400)
        wait_for(lambda: committed(eu, group, topic, 2) == _filled(committed(us, group, topic, 2)),
                 timeout_s=60, message="second sync")
        assert checkpoint(eu, "us", group, topic).committed == committed(us, group, topic, 2)


def test_a_group_with_members_or_its_own_offsets_is_left_alone(regions: dict[str, Region], topic: str,
                                                               tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(us.bootstrap, topic, partitions=1)
    links = [{"source": "us", "destination": "eu", "include": [topic]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        produce(us.bootstrap, topic, records("us", 0, 600))
        wait_for(lambda: len(read_all(eu.bootstrap, topic)) == 600, timeout_s=90, message="600 in eu")
        consume(us, group, topic, limit=100)
        wait_for(lambda: committed(eu, group, topic, 1) == {0: 100}, timeout_s=60, message="first sync")

        with _member(eu, group, topic):
            consume(us, group, topic, limit=100)
            wait_for(lambda: checkpoint(eu, "us", group, topic).committed == {0: 200}, message="checkpoint of 200")
            time.sleep(SETTLE_S)
            assert committed(eu, group, topic, 1) == {0: 100}

        wait_for(lambda: committed(eu, group, topic, 1) == {0: 200}, timeout_s=60, message="sync once idle again")
        consume(eu, group, topic, limit=50)
        assert committed(eu, group, topic, 1) == {0: 250}
        consume(us, group, topic, limit=100)
        wait_for(lambda: checkpoint(eu, "us", group, topic).committed == {0: 300}, message="checkpoint of 300")
        time.sleep(SETTLE_S)
        assert committed(eu, group, topic, 1) == {0: 250}


def test_active_active_links_do_not_echo_a_group_back(regions: dict[str, Region], topic: str,
                                                      tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=1)
    links = [{"source": "us", "destination": "eu", "include": [topic]},
             {"source": "eu", "destination": "us", "include": [topic]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        produce(us.bootstrap, topic, records("us", 0, 300))
        produce(eu.bootstrap, topic, records("eu", 0, 300))
        wait_for(lambda: all(len(read_all(r.bootstrap, topic)) == 600 for r in (us, eu)), timeout_s=90,
                 message="600 in both")
        consume(us, group, topic, limit=250)
        wait_for(lambda: committed(eu, group, topic, 1) != {}, timeout_s=60, message="sync into eu")
        time.sleep(SETTLE_S)
        assert committed(us, group, topic, 1) == {0: 250}
        assert checkpoint(us, "eu", group, topic) is None


def _filled(offsets: dict[int, int], partitions: int = 2) -> dict[int, int]:
    """A partition the group never committed in the source resumes at its start in the destination."""
    return {p: offsets.get(p, 0) for p in range(partitions)}


class _member:
    """A consumer of `group` in `region` that stays in the group (and commits nothing) while inside."""

    def __init__(self, region: Region, group: str, topic: str) -> None:
        self.consumer = Consumer({**region.kafka_config(), "group.id": group, "enable.auto.commit": False,
                                  "auto.offset.reset": "latest"})
        self.topic = topic
        self.stop = threading.Event()
        self.joined = threading.Event()

    def __enter__(self) -> None:
        self.consumer.subscribe([self.topic], on_assign=lambda *_: self.joined.set())
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        assert self.joined.wait(30), "member did not join"

    def _poll(self) -> None:
        while not self.stop.is_set():
            self.consumer.poll(0.2)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
        self.consumer.close()
