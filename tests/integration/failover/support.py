"""Failover test helpers: the checkpointer as a process, consumer groups that commit what they process, the CLI."""

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from amity.failover.checkpoints import Checkpoint, CheckpointStore
from amity.regions import Region
from amity.watermarks import end_offset
from tests.support.mirror import ChildProcess

REPO = Path(__file__).resolve().parents[3]


class CheckpointerProcess(ChildProcess):
    """`amity checkpoint run` on a mirror config, started and stopped by pid."""

    def __init__(self, workdir: Path, config: Path, groups: str, interval_s: float = 0.5,
                 snapshot_every: int = 100, sync: bool = True) -> None:
        super().__init__(workdir, "checkpointer", {**os.environ, "AMITY_FAILOVER_DISCOVERY_INTERVAL_S": "0.5"})
        self.options = ["--config", str(config), "--groups", groups, "--interval-s", str(interval_s),
                        "--snapshot-every", str(snapshot_every), *([] if sync else ["--no-sync"])]

    def args(self) -> list[str]:
        return ["checkpoint", "run", *self.options]


def amity(*args: str, timeout_s: float = 180) -> subprocess.CompletedProcess:
    """Run the `amity` CLI as a user would, from the repository root."""
    return subprocess.run([sys.executable, "-m", "amity.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, cwd=REPO, env={**os.environ, "COLUMNS": "200"})


def move(command: str, group: str, topic: str, source: str, destination: str, config: Path, *extra: str) -> dict:
    """`amity failover|failback ... --json`; the report, or an AssertionError with the CLI's output."""
    done = amity(command, "--group", group, "--topic", topic, "--from", source, "--to", destination,
                 "--config", str(config), "--json", *extra)
    assert done.returncode == 0, f"{command} exited {done.returncode}: {done.stderr}{done.stdout}"
    return json.loads(done.stdout)


def consume(region: Region, group: str, topic: str, limit: int | None = None, timeout_s: float = 60,
            skip: Callable[[Message], bool] | None = None, skipped: list[bytes] | None = None) -> list[bytes]:
    """Process up to `limit` records (all up to the current end when None) as `group`, committing exactly those.

    Records are committed one batch at a time, synchronously, with the offset
    after the last record processed in each partition: what is returned is
    what the group has processed, and its committed offsets say so. Records
    for which `skip` is true are committed without being processed, and their
    values appended to `skipped`.
    """
    consumer = Consumer({**region.kafka_config(), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.partition.eof": True})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {p: end_offset(consumer, TopicPartition(topic, p), timeout_s) for p in partitions}
        consumer.subscribe([topic])
        processed: list[bytes] = []
        positions: dict[int, int] = {}
        deadline = time.monotonic() + timeout_s
        while limit is None or len(processed) < limit:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{group} on {topic} in {region.name}: {len(processed)} records in {timeout_s}s")
            batch = consumer.consume(min(100, (limit - len(processed)) if limit else 100), timeout=0.5)
            commit = {}
            for msg in batch:
                if msg.error() is not None:
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise RuntimeError(msg.error().str())
                    continue
                if skip is not None and skip(msg):
                    skipped.append(msg.value())
                else:
                    processed.append(msg.value())
                commit[msg.partition()] = msg.offset() + 1
            if commit:
                consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in commit.items()], asynchronous=False)
                positions.update(commit)
            if limit is None and _caught_up(consumer, topic, ends):
                break
        return processed
    finally:
        consumer.close()


def _caught_up(consumer: Consumer, topic: str, ends: dict[int, int]) -> bool:
    assignment = consumer.assignment()
    if {tp.partition for tp in assignment} != set(ends):
        return False
    positions = {tp.partition: tp.offset for tp in consumer.position(assignment)}
    committed = {tp.partition: tp.offset for tp in consumer.committed(assignment, timeout=10)}
    return all(ends[p] == 0 or max(positions.get(p, -1), committed.get(p, -1)) >= ends[p] for p in ends)


@contextmanager
def member(region: Region, group: str, topic: str) -> Iterator[None]:
    """A live consumer of `group` on `topic` in `region` while the block runs (it has joined when the block starts)."""
    stop = threading.Event()
    joined = threading.Event()
    consumer = Consumer({**region.kafka_config(), "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic], on_assign=lambda *_: joined.set())

    def poll() -> None:
        while not stop.is_set():
            consumer.poll(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        assert joined.wait(30), f"a consumer of {group} did not join in {region.name}"
        yield
    finally:
        stop.set()
        thread.join(10)
        consumer.close()


def committed(region: Region, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({**region.kafka_config(), "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    finally:
        consumer.close()


def checkpoint(region: Region, source: str, group: str, topic: str) -> Checkpoint | None:
    client = redis.Redis.from_url(region.redis)
    try:
        return CheckpointStore(client).load(source, group, topic)
    finally:
        client.close()


def duplicates(*runs: list[bytes]) -> int:
    """Records processed more than once, across all runs."""
    counts = Counter(value for run in runs for value in run)
    return sum(n - 1 for n in counts.values() if n > 1)


def again(before: list[bytes], after: list[bytes]) -> int:
    """Records of `after` that were processed already (in `before`, or earlier in `after`)."""
    return duplicates(before, after) - duplicates(before)
