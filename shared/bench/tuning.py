"""Client settings the Java tools run with: MirrorMaker 2 and the ceiling's perf tools.

They match what Amity's mirror uses (amity.mirror.settings and its link
runner) wherever the Java clients have the same knob, so the comparison is of
the replicators, not of their defaults:

- producer: acks=all with idempotence (Connect's own default is idempotence
  off and one request in flight, slower and weaker than Amity's producer),
  linger.ms 20 and lz4 as Amity, batch.size 320 KiB as the Strimzi guide for
  high-volume MirrorMaker 2 recommends;
- consumer: up to 5,000 records per poll (Amity's batch), 50 MiB per fetch (the
  default, as that guide keeps it) and 8 MiB per partition as Amity (the default
  is 1 MiB),
  fetch.max.wait.ms 50 as Amity, read_committed as Amity (and as the Kafka
  docs recommend for exactly-once MirrorMaker 2);
- tasks.max 2: the Kafka docs recommend at least 2, and the machine has 2 cores.
"""

PRODUCER: dict[str, str] = {
    "acks": "all",
    "enable.idempotence": "true",
    "max.in.flight.requests.per.connection": "5",
    "linger.ms": "20",
    "batch.size": "327680",
    "compression.type": "lz4",
}

CONSUMER: dict[str, str] = {
    "max.poll.records": "5000",
    "fetch.max.bytes": "52428800",
    "max.partition.fetch.bytes": "8388608",
    "fetch.max.wait.ms": "50",
    "isolation.level": "read_committed",
}

MM2_TASKS = 2
TRANSACTION_MS = 100
