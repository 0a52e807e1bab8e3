"""The writers registered on a resolved topic's partitions while a link's workers rebalance (amity.tails).

A worker registers the destination partitions it writes before writing them. A partition another writer is
registered on has every landing go through the landing script; one written by a single writer needs none. So a
worker whose partitions are revoked ends its registrations once its records are landed: otherwise each
partition it handed over would count as shared, and cost a script per batch, until its lease ran out (5 min).
"""

from collections import defaultdict
from pathlib import Path

import pytest

from amity.state import StateSettings
from amity.tails import TailState
from tests.support.kafka import create_topic, produce_in_background, read_all
from tests.support.mirror import MirrorProcess, wait_for

PARTITIONS = 4
RECORDS = 24_000  # in chunks of 1,000 0.3 s apart: still writing when the second worker has joined


def _writers(client, settings: StateSettings, topic: str) -> dict[str, set[str]]:
    """Partition -> the writers registered on it whose lease is running."""
    seconds, micros = client.time()
    now_ms = seconds * 1000 + micros // 1000
    writers: dict[str, set[str]] = defaultdict(set)
    for entry, expires in client.hgetall(TailState(client, settings).prefix + topic).items():
        partition, writer = entry.decode().split("|")
        if int(expires) > now_ms:
            writers[partition].add(writer)
    return writers


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_worker_that_hands_partitions_over_leaves_them_to_their_new_writer(regions, topic, clients, state_settings,
                                                                             tmp_path: Path, delivery: str) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=PARTITIONS)
    links = [{"source": "us", "destination": "eu", "delivery": delivery, "include": [topic]}]
    workers = []
    for _ in range(2):
        worker = MirrorProcess(tmp_path, {"us": us, "eu": eu}, links,
                               env={"AMITY_MIRROR_STATE_NAMESPACE": state_settings.namespace})
        worker.add_rules([{"topic": topic, "policy": "lww"}])
        workers.append(worker)
    first, second = workers
    producer = produce_in_background(us.bootstrap, topic, RECORDS, chunks=24)
    try:
        first.start()
        wait_for(lambda: len(_writers(clients["eu"], state_settings, topic)) == PARTITIONS, timeout_s=90,
                 message="the first worker registered on every partition")
        second.start()
        wait_for(lambda: second.topic_stats("us-to-eu", topic).get("replicated"), timeout_s=90,
                 message="the second worker took partitions over")
        producer.join()
        wait_for(lambda: len(read_all(eu.bootstrap, topic)) >= RECORDS, timeout_s=120,
                 message=f"{RECORDS} records in eu")
        writers = _writers(clients["eu"], state_settings, topic)
    finally:
        producer.join()
        for worker in workers:
            if worker.alive():
                worker.stop()
    assert sorted(writers) == [str(p) for p in range(PARTITIONS)], "every partition written is registered"
    assert all(len(names) == 1 for names in writers.values()), f"partitions with two writers: {dict(writers)}"
    assert len(set().union(*writers.values())) == 2, "both workers write partitions of their own"
