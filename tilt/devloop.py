"""What the Tiltfile runs besides `amity` itself: the coordinator on the first local region's Redis,
registering the local regions with a mesh between them, a smoke check, and sample traffic.

Run from the repository root with the project's virtualenv:
    .venv/bin/python tilt/devloop.py coordinator|register|check|traffic
Every setting is an environment variable, the same ones the Tiltfile reads (docs/dev.md).
"""

import json
import os
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from amity.cli.api import ApiError, CoordinatorClient
from amity.dev.settings import DevSettings

REGIONS = os.environ.get("AMITY_TILT_REGIONS", "us,eu").split(",")
URL = os.environ.get("AMITY_URL", "http://127.0.0.1:8080")
INCLUDE = os.environ.get("AMITY_TILT_INCLUDE", ".*")
SMOKE_TOPIC = os.environ.get("AMITY_TILT_SMOKE_TOPIC", "amity-dev-smoke")
TRAFFIC_TOPIC = os.environ.get("AMITY_TILT_TRAFFIC_TOPIC", "amity-dev-orders")


def local_regions() -> dict[str, dict[str, str]]:
    """The regions `amity dev up` started, in AMITY_TILT_REGIONS order."""
    path = DevSettings().regions_file
    try:
        started = json.loads(path.read_text())
    except FileNotFoundError:
        sys.exit(f"{path} is missing: start the regions first (amity dev up --regions {','.join(REGIONS)})")
    missing = [name for name in REGIONS if name not in started]
    if missing:
        sys.exit(f"regions {missing} are not running: amity dev up --regions {','.join(REGIONS)}")
    return {name: started[name] for name in REGIONS}


def coordinator() -> None:
    """Replace this process with the coordinator, keeping its state in the first region's Redis."""
    first = local_regions()[REGIONS[0]]
    os.environ.setdefault("AMITY_REDIS_URL", first["redis"])
    amity = os.path.join(os.path.dirname(sys.executable), "amity")
    os.execv(amity, [amity, "coordinator", "run"])


def register() -> None:
    """Register every local region the coordinator does not know yet, and a mesh between them (kept if there)."""
    with CoordinatorClient(URL, os.environ.get("AMITY_API_TOKEN")) as api:
        known = {region["name"] for region in api.get("/v1/regions")}
        for name, region in local_regions().items():
            if name not in known:
                api.post("/v1/regions", {"name": name, "bootstrap": region["bootstrap"], "redis": region["redis"]})
                print(f"registered region {name}")
        if len(REGIONS) > 1:
            links = api.post("/v1/links/mesh", {"regions": REGIONS, "include": [INCLUDE]})["links"]
            print("mesh:", ", ".join(link["id"] for link in links))


def check(timeout_s: float = 90.0) -> None:
    """A record written in each region arrives in every other one through the mirrors."""
    regions = local_regions()
    marker = uuid.uuid4().hex
    for region in regions.values():
        _ensure_topic(region["bootstrap"], SMOKE_TOPIC)
    for name, region in regions.items():
        _produce(region["bootstrap"], SMOKE_TOPIC, [f"{marker}:{name}".encode()])
    expected = {f"{marker}:{name}".encode() for name in regions}
    deadline = time.monotonic() + timeout_s
    for name, region in regions.items():
        seen: set[bytes] = set()
        while not expected <= seen:
            if time.monotonic() > deadline:
                sys.exit(f"smoke check: region {name} got {sorted(seen & expected)} of {sorted(expected)} "
                         f"within {timeout_s:.0f}s; are the mirror workers running?")
            seen |= _values(region["bootstrap"], SMOKE_TOPIC)
            time.sleep(0.5)
        print(f"region {name}: every region's smoke record arrived")


def traffic(seconds: float = 120.0, per_second: int = 50) -> None:
    """Keyed records into every region for a while, so that the dashboard has something to show."""
    regions = local_regions()
    producers = {}
    for name, region in regions.items():
        _ensure_topic(region["bootstrap"], TRAFFIC_TOPIC)
        producers[name] = Producer({"bootstrap.servers": region["bootstrap"], "linger.ms": 20})
    ends = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < ends:
        for name, producer in producers.items():
            for _ in range(per_second // 10):
                sent += 1
                producer.produce(TRAFFIC_TOPIC, key=f"order-{sent % 100}".encode(),
                                 value=json.dumps({"region": name, "n": sent}).encode())
            producer.poll(0)
        time.sleep(0.1)
    for producer in producers.values():
        producer.flush(30)
    print(f"produced {sent} records to {TRAFFIC_TOPIC}")


def _ensure_topic(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        try:
            admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
        except Exception as exc:  # created meanwhile by the other region's mirror: fine
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for value in values:
        producer.produce(topic, value=value)
    producer.flush(30)


def _values(bootstrap: str, topic: str) -> set[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"tilt-check-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        return {m.value() for m in consumer.consume(1000, timeout=1) if not m.error()}
    finally:
        consumer.close()


COMMANDS = {"coordinator": coordinator, "register": register, "check": check, "traffic": traffic}

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(COMMANDS)}")
    try:
        COMMANDS[sys.argv[1]]()
    except ApiError as exc:
        sys.exit(f"error: {exc}")
