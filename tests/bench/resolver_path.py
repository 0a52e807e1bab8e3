"""Python CPU per record of a link's batch path, phase by phase: routing, the first-hop stamp, the compare-and-set.

What a mirror worker's link thread spends on each record of a topic under a conflict rule, beside
plain mirroring (`none`), with Kafka left out: batches of 5,000 records of 200 bytes are routed by
the link's Router and decided by its Resolution against a real Redis (the source and destination
states in two databases of one redis-server), on the benchmark's keys (10,000 keys, a batch being a
partition's run of them, as `amity bench` writes them). The records stand in for consumed messages:
plain objects with the accessors a link calls. CPU is this thread's (time.thread_time):
waiting for Redis does not count, Redis's own CPU is `redis_scripts.py`'s.

    python tests/bench/resolver_path.py [--policy lww|vector] [--batches 60] [--port 21191] [--engine lua|module]

`--engine module` loads the amitystate module into the redis-server and runs the state's operations there.

Starts its own redis-server (no persistence) on the port and stops it by pid.
"""

import argparse
import time
from collections import Counter
from collections.abc import Callable

from amity.dev.native import ensure_module
from amity.dev.settings import DevSettings
from amity.links import Link
from amity.mirror.resolution import Resolution
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.worker import tune_collector
from amity.regions import Region
from amity.rules import ConflictRule, RuleSet
from amity.state import Engine, StateSettings

from redis_scripts import BATCH, PARTITIONS, ms_written, run_of_keys  # tests/bench, beside this script
from scratch_redis import scratch_redis

VALUE = b"x" * 200
WARM_UP = PARTITIONS  # batches not measured: every key's state exists once each partition was read


class Record:
    """A consumed record, as much of confluent_kafka.Message as a link reads."""

    __slots__ = ("_topic", "_partition", "_offset", "_key", "_timestamp")

    def __init__(self, topic: str, partition: int, offset: int, key: bytes, timestamp: int) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._timestamp = key, timestamp

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return VALUE

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp


def batch_of(number: int, start_ms: int) -> list[Record]:
    """Batch `number`: the next run of one partition of the benchmark's keys, as redis_scripts.py reads them, their
    timestamps rising across batches as its floors do (`ms_written`)."""
    partition, first = number % PARTITIONS, number * BATCH
    return [Record("t", partition, first + i, key, start_ms + ms_written(first + i))
            for i, key in enumerate(run_of_keys(number))]


def timed(spent: Counter, phase: str, call: Callable) -> Callable:
    def measured(*args, **kwargs):
        started = time.thread_time()
        try:
            return call(*args, **kwargs)
        finally:
            spent[phase] += time.thread_time() - started
    return measured


def measure(policy: str, port: int, batches: int, engine: Engine) -> dict[str, float]:
    """µs of this thread's CPU per record, by phase, over `batches` batches after the warm-up."""
    us = Region(name="us", bootstrap="127.0.0.1:9", redis=f"redis://127.0.0.1:{port}/0")
    eu = Region(name="eu", bootstrap="127.0.0.1:9", redis=f"redis://127.0.0.1:{port}/1")
    link = Link(source="us", destination="eu")
    rules = RuleSet(rules=[ConflictRule(topic="t", policy=policy)])
    router = Router(link, [link, Link(source="eu", destination="us")], ["us", "eu"], 8, rules)
    resolution = Resolution(link, us, eu, rules, StateSettings(engine=engine), timeout_s=10.0)
    for client in resolution.clients.values():
        client.flushdb()
    spent: Counter = Counter()
    resolution.stamper.state.stamp_batch = timed(spent, "stamp script", resolution.stamper.state.stamp_batch)
    resolution.resolver.state.apply = timed(spent, "apply script", resolution.resolver.state.apply)
    resolution._stamp = timed(spent, "stamp", resolution._stamp)
    resolution._resolve = timed(spent, "compare-and-set", resolution._resolve)
    # far enough back that the last batch's timestamps are still behind the clock (the skew guard refuses others)
    start_ms, records = int(time.time() * 1000) - ms_written((WARM_UP + batches) * BATCH) - 1000, 0
    for number in range(WARM_UP + batches):
        if number == WARM_UP:
            spent.clear()
        batch = batch_of(number, start_ms)
        started = time.thread_time()
        routed = router.route(batch, {})
        routed_at = time.thread_time()
        if routed.resolve:
            resolution.decide(routed.resolve)
        spent["route"] += routed_at - started
        spent["resolve"] += time.thread_time() - routed_at
        records += len(batch) if number >= WARM_UP else 0
    return {phase: 1e6 * seconds / records for phase, seconds in spent.items()}


def report(policy: str, phases: dict[str, float], plain: dict[str, float]) -> None:
    stamp_loop = phases["stamp"] - phases["stamp script"]
    apply_loop = phases["compare-and-set"] - phases["apply script"]
    rest = phases["resolve"] - phases["stamp"] - phases["compare-and-set"]
    total, baseline = phases["route"] + phases["resolve"], plain["route"] + plain["resolve"]
    print(f"policy {policy}: {total:.2f} µs of Python CPU per record, `none` {baseline:.2f}: {total - baseline:+.2f}")
    for name, micros in (("route", phases["route"]), ("first-hop stamp, Python", stamp_loop),
                         ("stamp script call (pack, send, reply)", phases["stamp script"]),
                         ("compare-and-set, Python", apply_loop),
                         ("apply script call (pack, send, reply)", phases["apply script"]),
                         ("stamped headers and the batch's columns", rest)):
        print(f"  {name:42s} {micros:5.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policy", choices=["lww", "vector"], default="lww")
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--port", type=int, default=21191)
    parser.add_argument("--engine", choices=["lua", "module"], default="lua")
    args = parser.parse_args()
    engine = Engine(args.engine)
    tune_collector(MirrorSettings().gc_threshold)  # as a mirror worker does
    module = ensure_module(DevSettings().module_path) if engine is Engine.MODULE else None
    with scratch_redis(args.port, module):
        plain = measure("none", args.port, args.batches, engine)
        report(args.policy, measure(args.policy, args.port, args.batches, engine), plain)


if __name__ == "__main__":
    main()
