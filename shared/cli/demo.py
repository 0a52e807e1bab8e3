"""`amity demo`: the main job on a local multi-region environment it sets up itself."""

import time
import uuid

import typer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from amity.cli.output import console, progress_printer, table, user_errors
from amity.dev.environment import DevEnvironment
from amity.dev.settings import DevSettings

DEMO_REGIONS = ["us", "eu"]


def demo() -> None:
    """Bring two regions up, produce in one and read it back there."""
    with user_errors():
        states = DevEnvironment(DevSettings(), progress_printer()).up(DEMO_REGIONS)
    table("Local regions", ["region", "kafka", "redis"], [(r, s.bootstrap, s.redis) for r, s in states.items()])
    bootstrap = states["us"].bootstrap
    topic = f"demo-orders-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for n in range(10):
        producer.produce(topic, key=f"order-{n}".encode(), value=f'{{"amount": {n * 10}}}'.encode())
    producer.flush(30)
    console.print(f"produced 10 records to [bold]{topic}[/] in region us")
    rows = _read(bootstrap, topic, 10)
    table(f"{topic} read back in region us", ["partition", "offset", "key", "value"], rows)
    console.print("regions stay up; stop them with [bold]amity dev down[/] (or make demo-down)")
    if len(rows) != 10:
        raise typer.Exit(1)


def _read(bootstrap: str, topic: str, expected: int) -> list[tuple]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"demo-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    rows: list[tuple] = []
    deadline = time.monotonic() + 30
    try:
        while len(rows) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(100, timeout=1):
                if not msg.error():
                    rows.append((msg.partition(), msg.offset(), msg.key().decode(), msg.value().decode()))
    finally:
        consumer.close()
    return sorted(rows)
