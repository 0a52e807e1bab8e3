"""What writing through `amity.Producer` costs an application, next to a plain confluent-kafka producer.

The same keyed records (200-byte values over 10,000 keys, in chunks of 10,000, each chunk one `produce_batch`)
go into a fresh 6-partition topic of one local region per writer: a plain producer with the same settings, then
`amity.Producer` under `lww` and under `vector`, round after round. Per writer it prints records/s from the
first record to the last acknowledgement, this process's CPU per record (Python and librdkafka's threads, the
values made beforehand and not counted), and the region's Redis CPU per record (the stamp, the held-version
update, and per batch the look for other writers of the topic: a writer alone on it lands nothing).

    python tests/bench/producer.py [--records 300000] [--rounds 3] [--base-port 23090]

Starts its own region (Kafka 4.3.1 and Redis, under .amity/bench-producer) and stops it by pid at the end.
"""

import argparse
import shutil
import statistics
import time
from collections.abc import Callable

import confluent_kafka

from amity.bench.data import create_topics, payloads
from amity.bench.meter import ProcessMeter
from amity.dev.environment import DevEnvironment
from amity.dev.settings import REPO_ROOT, DevSettings
from amity.producer import Producer
from amity.regions import Region
from amity.rules import ConflictRule, RuleSet

KEYS, CHUNK, SIZE, PARTITIONS = 10_000, 10_000, 200, 6
CONFIG = {"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4",
          "queue.buffering.max.messages": 1_000_000, "log_level": 3}
WRITERS = ("plain", "lww", "vector")

Chunks = list[list[tuple[bytes, bytes]]]
Writer = tuple[Callable[[list[tuple[bytes, bytes]]], None], Callable[[], int]]  # write a chunk; flush


def chunks_of(records: int) -> Chunks:
    """The records to write, made before any writer is timed."""
    values = payloads(records, SIZE, seed=records)
    rows = [(f"k{i % KEYS}".encode(), value) for i, value in enumerate(values)]
    return [rows[i:i + CHUNK] for i in range(0, records, CHUNK)]


def plain_writer(region: Region, topic: str) -> Writer:
    producer = confluent_kafka.Producer({**region.kafka_config(), "enable.idempotence": True, "acks": "all",
                                         "partitioner": "murmur2_random", **CONFIG})

    def write(chunk: list[tuple[bytes, bytes]]) -> None:
        for key, value in chunk:
            while True:
                try:
                    producer.produce(topic, value, key)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)

    return write, lambda: producer.flush(120)


def amity_writer(region: Region, topic: str, policy: str) -> Writer:
    producer = Producer(region, RuleSet(rules=[ConflictRule(topic=topic, policy=policy)]), CONFIG)

    def write(chunk: list[tuple[bytes, bytes]]) -> None:
        producer.produce_batch(topic, chunk)
        producer.poll(0)

    def flush() -> int:
        remaining = producer.flush(120)
        producer.tails.close()
        return remaining

    return write, flush


def one_run(region: Region, redis: ProcessMeter, writer: str, chunks: Chunks, round_: int) -> dict[str, float]:
    topic = f"bench-producer-{writer}-{round_}"
    create_topics(region.bootstrap, [topic], PARTITIONS)
    write, flush = plain_writer(region, topic) if writer == "plain" else amity_writer(region, topic, writer)
    records = sum(len(chunk) for chunk in chunks)
    redis_before, cpu_before, started = redis.read().cpu_s, time.process_time(), time.perf_counter()
    for chunk in chunks:
        write(chunk)
    if flush() != 0:
        raise SystemExit(f"{writer}: records not acknowledged after 120 s")
    seconds = time.perf_counter() - started
    return {"records_per_s": records / seconds,
            "cpu_us": 1e6 * (time.process_time() - cpu_before) / records,
            "redis_us": 1e6 * (redis.read().cpu_s - redis_before) / records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=23090)
    args = parser.parse_args()
    settings = DevSettings(home=REPO_ROOT / ".amity" / "bench-producer", base_port=args.base_port)
    env = DevEnvironment(settings, print)
    env.down()
    shutil.rmtree(settings.region_dir("us"), ignore_errors=True)
    try:
        state = env.up(["us"])["us"]
        region = Region(name="us", bootstrap=state.bootstrap, redis=state.redis)
        redis = ProcessMeter(state.redis_pid)
        chunks = chunks_of(args.records)
        runs: dict[str, list[dict[str, float]]] = {writer: [] for writer in WRITERS}
        for round_ in range(1, args.rounds + 1):
            for writer in WRITERS:
                runs[writer].append(one_run(region, redis, writer, chunks, round_))
    finally:
        env.down()
    print(f"{args.records:,} records of {SIZE} bytes over {KEYS:,} keys, medians of {args.rounds} rounds")
    print(f"{'writer':<16}{'records/s':>12}{'CPU µs/record':>16}{'Redis µs/record':>18}")
    for writer, measured in runs.items():
        name = "confluent-kafka" if writer == "plain" else f"amity {writer}"
        medians = {field: statistics.median(run[field] for run in measured) for field in measured[0]}
        print(f"{name:<16}{medians['records_per_s']:>12,.0f}{medians['cpu_us']:>16.1f}{medians['redis_us']:>18.1f}")


if __name__ == "__main__":
    main()
