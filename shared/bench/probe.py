"""The latency probe: records sent at a fixed rate carry their send time; a destination consumer times them.

Run as two processes (`python -m amity.bench.probe receive|send ...`) so that
neither the sender's pacing nor the receiver's bookkeeping waits on the
other's interpreter lock. Both run on this machine, so one clock serves both
ends. A probe record's value is

    b"AMBP" | probe id (1 byte) | sequence (8 bytes) | send time, ns since the epoch (8 bytes) | padding

to exactly the benchmark's record size; the receiver ignores any other record
(in an active-active topic, the region's own writes share the topic).

The sender primes its producer first: it sends one record too short to be a
probe record (`PRIME`) and waits for it to be acknowledged before the timed
records. An idempotent producer holds its first records until the broker has
given it a producer id, which here sometimes took 500 ms: at 2,000 records/s
enough records to set the p99 of any tool's round, the ceiling's too
(docs/benchmarks.md, "The probe's own start").

The receiver prints READY once it is positioned at the topic's end, and its
result as one JSON line when it has every record or its deadline passes.
"""

import argparse
import json
import math
import struct
import sys
import time
import uuid
from array import array
from pathlib import Path

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from amity.watermarks import end_offset

MAGIC = b"AMBP"
STAMP = struct.Struct(">4sBQQ")
HEADER_BYTES = STAMP.size
TICK_S = 0.005
READY = "READY"
PRIME = b"prime"  # shorter than HEADER_BYTES: every receiver ignores it
PRIME_TIMEOUT_S = 30.0


def stamp(probe_id: int, seq: int, sent_ns: int, padding: bytes) -> bytes:
    return STAMP.pack(MAGIC, probe_id, seq, sent_ns) + padding


def unstamp(value: bytes | None, probe_id: int) -> tuple[int, int] | None:
    """(sequence, send time ns) of one of this probe's records, None for any other record."""
    if value is None or len(value) < HEADER_BYTES or value[:4] != MAGIC or value[4] != probe_id:
        return None
    _magic, _id, seq, sent_ns = STAMP.unpack_from(value)
    return seq, sent_ns


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def send(bootstrap: str, topic: str, probe_id: int, rate: int, count: int, size: int) -> dict:
    """Send `count` records at `rate` per second, round-robin over the partitions, once the producer is primed."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 1})
    partitions = len(producer.list_topics(topic, timeout=30).topics[topic].partitions)
    producer.produce(topic, value=PRIME, partition=0)
    if producer.flush(PRIME_TIMEOUT_S):
        raise SystemExit(f"probe sender: {topic} did not acknowledge a record in {PRIME_TIMEOUT_S:.0f}s")
    padding = b"p" * (size - HEADER_BYTES)
    start = time.monotonic()
    seq = 0
    while seq < count:
        due = min(count, int((time.monotonic() - start) * rate) + 1)
        while seq < due:
            producer.produce(topic, value=stamp(probe_id, seq, time.time_ns(), padding), partition=seq % partitions)
            seq += 1
        producer.poll(0)
        time.sleep(TICK_S)
    elapsed = time.monotonic() - start
    unsent = producer.flush(60)
    return {"sent": count - unsent, "seconds": elapsed, "rate": count / elapsed if elapsed else 0.0}


def receive(bootstrap: str, topic: str, probe_id: int, count: int, deadline_s: float, out: Path) -> dict:
    """Time `count` records of this probe from the topic's current end; give up after `deadline_s`.

    The latencies (microseconds, uint32 in machine order) go to `out` for the caller to merge with other
    directions; the summary is returned.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-probe-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "fetch.wait.max.ms": 100})
    metadata = consumer.list_topics(topic, timeout=30).topics[topic]
    # The ceiling creates its probe topic just before the receivers start: its leader may not be known yet.
    start = [TopicPartition(topic, p, end_offset(consumer, TopicPartition(topic, p), timeout_s=30))
             for p in sorted(metadata.partitions)]
    consumer.assign(start)
    print(READY, flush=True)
    seen = bytearray(count)
    latencies_us = array("I")
    duplicates = 0
    give_up = time.monotonic() + deadline_s
    while len(latencies_us) < count and time.monotonic() < give_up:
        # poll() returns at the first record; consume() alone would wait for a full batch or its timeout.
        first = consumer.poll(0.1)
        now_ns = time.time_ns()
        if first is None:
            continue
        batch = [first, *consumer.consume(10_000, timeout=0)]
        for msg in batch:
            if msg.error() is not None:
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    raise SystemExit(f"probe receiver: {msg.error()}")
                continue
            found = unstamp(msg.value(), probe_id)
            if found is None or found[0] >= count:
                continue
            seq, sent_ns = found
            if seen[seq]:
                duplicates += 1
                continue
            seen[seq] = 1
            latencies_us.append(max(now_ns - sent_ns, 0) // 1000)
    consumer.close()
    out.write_bytes(latencies_us.tobytes())
    ordered = sorted(latencies_us)
    return {"received": len(ordered), "duplicates": duplicates,
            "p50_ms": percentile(ordered, 0.50) / 1000, "p99_ms": percentile(ordered, 0.99) / 1000,
            "max_ms": (ordered[-1] / 1000) if ordered else 0.0}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m amity.bench.probe", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["send", "receive"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--probe-id", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--deadline", type=float, default=120.0, help="receive: seconds before giving up")
    parser.add_argument("--out", type=Path, help="receive: where the latencies are written")
    args = parser.parse_args(argv)
    if args.size < HEADER_BYTES:
        parser.error(f"--size must be at least {HEADER_BYTES} bytes to hold the probe's stamp")
    if args.role == "send":
        result = send(args.bootstrap, args.topic, args.probe_id, args.rate, args.count, args.size)
    else:
        if args.out is None:
            parser.error("receive needs --out")
        result = receive(args.bootstrap, args.topic, args.probe_id, args.count, args.deadline, args.out)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
