"""The ceiling: Kafka's own perf tools on the same clusters and records of the same size.

A mirror consumes from the source and produces into the destination, so it
cannot beat min(consume rate, produce rate) measured here with the Java
clients at their best. ProducerPerformance writes into a fresh destination
topic with the producer settings the mirrors get (amity.bench.tuning);
ConsumerPerformance reads the scenario's source topics; its fetch rate
excludes the time its group took to form.
"""

import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from amity.bench import tuning
from amity.dev.jars import classpath
from amity.dev.kafka import java
from amity.errors import AmityError

PRODUCER_MAIN = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_MAIN = "org.apache.kafka.tools.ConsumerPerformance"
JVM = ["-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
TIMEOUT_S = 900
PRODUCER_SUMMARY = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec", re.MULTILINE)
CONSUMER_FIELDS = ("start.time", "end.time", "data.consumed.in.MB", "MB.sec", "data.consumed.in.nMsg", "nMsg.sec",
                   "rebalance.time.ms", "fetch.time.ms", "fetch.MB.sec", "fetch.nMsg.sec")


class PerfToolError(AmityError):
    """A Kafka perf tool failed or printed something this harness cannot read."""


@dataclass(frozen=True, slots=True)
class Rate:
    records: int
    records_per_s: float


def produce(jar_dir: Path, log4j: Path, bootstrap: str, topic: str, records: int, size: int,
            transactional: bool = False) -> Rate:
    """ProducerPerformance at full speed into `topic`."""
    argv = [java(), *JVM, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath(jar_dir), PRODUCER_MAIN,
            "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
            "--record-size", str(size), "--throughput", "-1",
            "--command-property", *(f"{k}={v}" for k, v in tuning.PRODUCER.items())]
    if transactional:
        argv += ["--transaction-duration-ms", str(tuning.TRANSACTION_MS), "--transactional-id",
                 f"bench-ceiling-{uuid.uuid4().hex[:8]}"]
    output = _run(argv, "ProducerPerformance")
    summaries = PRODUCER_SUMMARY.findall(output)
    if not summaries:
        raise PerfToolError(f"ProducerPerformance printed no summary:\n{output[-1500:]}")
    sent, per_s = summaries[-1]
    return Rate(int(sent), float(per_s))


def consume(jar_dir: Path, log4j: Path, bootstrap: str, topic: str, records: int) -> Rate:
    """ConsumerPerformance reading `records` from `topic`; the rate is its fetch rate (group formation excluded)."""
    argv = [java(), *JVM, f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath(jar_dir), CONSUMER_MAIN,
            "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
            "--group", f"bench-ceiling-{uuid.uuid4().hex[:8]}", "--timeout", "60000", "--hide-header",
            "--command-property", *(f"{k}={v}" for k, v in tuning.CONSUMER.items())]
    output = _run(argv, "ConsumerPerformance")
    row = _consumer_row(output)
    return Rate(int(row["data.consumed.in.nMsg"]), row["fetch.nMsg.sec"])


def in_parallel(*calls) -> list[Rate]:
    """Run perf tool calls at the same time (both directions of an active-active ceiling)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def _consumer_row(output: str) -> dict[str, float]:
    for line in reversed(output.splitlines()):
        cells = [c.strip() for c in line.split(",")]
        if len(cells) == len(CONSUMER_FIELDS):
            try:
                return {name: float(cell) for name, cell in zip(CONSUMER_FIELDS, cells) if "time" not in name}
            except ValueError:
                continue
    raise PerfToolError(f"ConsumerPerformance printed no result row:\n{output[-1500:]}")


def _run(argv: list[str], name: str) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise PerfToolError(f"{name} did not finish in {TIMEOUT_S}s") from None
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise PerfToolError(f"{name} exited with {result.returncode}:\n{output[-1500:]}")
    return output
