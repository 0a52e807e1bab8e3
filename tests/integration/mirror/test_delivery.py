"""Delivery guarantees under worker crashes: exactly-once survives kill -9; at-least-once loses nothing."""

import random
import time
from collections import Counter
from pathlib import Path

from amity.headers import decode, find_provenance
from tests.support.kafka import create_topic, produce_in_background, read_all
from tests.support.mirror import MirrorProcess, wait_for

RECORDS = 120_000


def origin_coordinates(bootstrap: str, topic: str) -> Counter:
    """How often each source record (partition, offset) is visible to a read_committed consumer."""
    return Counter((p.partition, p.offset) for p in
                   (decode(find_provenance(m.headers())) for m in read_all(bootstrap, topic, timeout_s=120)))


def test_exactly_once_survives_repeated_kill_9(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=3)
    links = [{"source": "us", "destination": "eu", "delivery": "exactly-once", "include": [topic]}]
    producer = produce_in_background(us.bootstrap, topic, RECORDS)
    rng = random.Random(7)
    kills = 0
    small = {"AMITY_MIRROR_TRANSACTION_BATCH_SIZE": "5000"}  # many commits, so the kills fall between and inside them
    worker = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links, env=small).start()
    try:
        for _ in range(4):
            time.sleep(rng.uniform(2.0, 5.0))
            worker.kill9()
            kills += 1
            worker = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links, env=small).start()
        producer.join()
        wait_for(lambda: sum(origin_coordinates(eu.bootstrap, topic).values()) >= RECORDS, timeout_s=180,
                 interval_s=2, message=f"{RECORDS} records in eu")
    finally:
        worker.stop()
    seen = origin_coordinates(eu.bootstrap, topic)
    assert kills == 4
    assert len(seen) == RECORDS, "gap: some source records are missing"
    assert set(seen.values()) == {1}, f"duplicates: {sum(v - 1 for v in seen.values())}"


def test_two_workers_share_a_link_and_one_stopping_loses_nothing(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=6)
    links = [{"source": "us", "destination": "eu", "include": [topic]}]
    total = 60_000
    first = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links).start()
    second = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links).start()
    try:
        producer = produce_in_background(us.bootstrap, topic, total, chunks=6)
        wait_for(lambda: first.topic_stats("us-to-eu", topic).get("replicated"), message="first worker replicating")
        assert first.stop() == 0
        producer.join()
        values = wait_for(lambda: _complete(eu.bootstrap, topic, total), timeout_s=120, message=f"{total} in eu")
    finally:
        second.stop()
    assert set(int(v) for v in values) == set(range(total))


def _complete(bootstrap: str, topic: str, total: int):
    values = Counter(m.value() for m in read_all(bootstrap, topic))
    return values if len(values) >= total else None


def test_exactly_once_workers_rebalancing_neither_lose_nor_duplicate(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=4)
    links = [{"source": "us", "destination": "eu", "delivery": "exactly-once", "include": [topic]}]
    total = 40_000
    first = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links).start()
    producer = produce_in_background(us.bootstrap, topic, total, chunks=40)
    second = None
    try:
        wait_for(lambda: first.topic_stats("us-to-eu", topic).get("replicated"), message="first worker replicating")
        second = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links).start()
        wait_for(lambda: second.topic_stats("us-to-eu", topic).get("replicated"), timeout_s=60,
                 message="second worker took partitions over")
        assert first.stop() == 0
        producer.join()
        wait_for(lambda: sum(origin_coordinates(eu.bootstrap, topic).values()) >= total, timeout_s=120,
                 interval_s=2, message=f"{total} records in eu")
    finally:
        for worker in (first, second):
            if worker is not None and worker.alive():
                worker.stop()
    seen = origin_coordinates(eu.bootstrap, topic)
    assert len(seen) == total, "gap: some source records are missing"
    assert set(seen.values()) == {1}, f"duplicates: {sum(v - 1 for v in seen.values())}"
