"""`amity demo`: the whole story on a local two-region environment it sets up itself.

Two regions (Kafka + Redis each), the coordinator, one mirror worker; the
regions and an active-active mesh are registered through the coordinator's
API, a last-writer-wins rule is set, both regions write conflicting updates
and deletes to the same keys at the same time, and the demo prints the
converged view of each region with the loop-prevention and conflict stats.
The coordinator and the worker stay up; `amity dev down` stops everything.
"""

import os
import random
import threading
import time
import uuid

from confluent_kafka.admin import AdminClient, NewTopic

from amity.cli.api import CoordinatorClient
from amity.cli.output import console, fail, progress_printer, table, user_errors
from amity.dev.environment import DevEnvironment
from amity.dev.services import Services, wait_healthy
from amity.dev.settings import DevSettings
from amity.errors import AmityError
from amity.producer import Producer
from amity.regions import Region
from amity.rules import ConflictRule, RuleSet
from amity.view import ResolvedView

DEMO_REGIONS = ["us", "eu"]
COORDINATOR_PORT = 8080
KEYS = [f"account-{n}" for n in range(8)]
WRITES_PER_REGION = 200


def demo() -> None:
    """Two regions, coordinator, mirror, conflicting writes in both regions, converged view and stats."""
    say = progress_printer()
    with user_errors():
        settings = DevSettings()
        states = DevEnvironment(settings, say).up(DEMO_REGIONS)
        regions = {name: Region(name=name, bootstrap=s.bootstrap, redis=s.redis) for name, s in states.items()}
        url = _coordinator(settings, regions["us"])
        topic = f"demo-accounts-{uuid.uuid4().hex[:6]}"
        _create_topic(regions, topic)
        _configure(url, regions, topic)
        _worker(settings, url)
        say(f"both regions now write {WRITES_PER_REGION} conflicting updates and deletes each to {len(KEYS)} keys")
        rule = ConflictRule(topic=topic, policy="lww")
        _write_conflicts(regions, topic, RuleSet(rules=[rule]))
        views = _converged(regions, topic, rule)
        stats = CoordinatorClient(url).get("/v1/stats", topic=topic)
    _show(views, stats, topic, url)


def _coordinator(settings: DevSettings, us: Region) -> str:
    """The coordinator, its own state in database 1 of region us's Redis."""
    url = f"http://127.0.0.1:{COORDINATOR_PORT}"
    env = {**os.environ, "AMITY_REDIS_URL": us.redis.rsplit("/", 1)[0] + "/1", "AMITY_PORT": str(COORDINATOR_PORT),
           "AMITY_HEARTBEAT_INTERVAL_S": "1", "AMITY_WORKER_TIMEOUT_S": "5", "AMITY_HEALTH_INTERVAL_S": "2"}
    marker = f"coordinator run --port {COORDINATOR_PORT}"
    service = Services(settings).start("coordinator", ["coordinator", "run", "--port", str(COORDINATOR_PORT),
                                                      "--log-level", "warning"], marker, env)
    wait_healthy(url, service)
    return url


def _worker(settings: DevSettings, url: str) -> None:
    stats = settings.home / "worker-1.stats.json"
    Services(settings).start("mirror-worker-1", ["mirror", "run", "--coordinator", url, "--stats-file", str(stats)],
                             str(stats), {**os.environ, "AMITY_MIRROR_DISCOVERY_INTERVAL_S": "1"})


def _create_topic(regions: dict[str, Region], topic: str) -> None:
    for region in regions.values():
        admin = AdminClient(region.kafka_config())
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)


def _configure(url: str, regions: dict[str, Region], topic: str) -> None:
    with CoordinatorClient(url) as api:
        for region in regions.values():
            if not any(r["name"] == region.name for r in api.get("/v1/regions")):
                api.post("/v1/regions", {"name": region.name, "bootstrap": region.bootstrap, "redis": region.redis})
        api.post("/v1/links/mesh", {"regions": list(regions), "include": ["demo-accounts-.*"]})
        api.put("/v1/rules", {"topic": topic, "policy": "lww"})
    console.print(f"registered regions {', '.join(regions)}, an active-active mesh for demo-accounts-*, "
                  f"and a last-writer-wins rule for {topic}")


def _write_conflicts(regions: dict[str, Region], topic: str, rules: RuleSet) -> None:
    """Both regions write the same keys at once, through the stamping producer."""
    errors: list[Exception] = []

    def write(name: str, seed: int) -> None:
        rng = random.Random(seed)
        try:
            with Producer(regions[name], rules) as producer:
                for n in range(0, WRITES_PER_REGION, 10):
                    producer.produce_batch(topic, [
                        (rng.choice(KEYS).encode(),
                         None if rng.random() < 0.1 else f'{{"balance": {rng.randrange(1000)}, "by": "{name}"}}'.encode())
                        for _ in range(10)])
                    producer.poll(0)
                    time.sleep(0.15)
        except AmityError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(name, n)) for n, name in enumerate(regions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        fail(f"a writer failed: {errors[0]}")


def _converged(regions: dict[str, Region], topic: str, rule: ConflictRule) -> dict[str, dict]:
    deadline = time.monotonic() + 90
    while True:
        views = {name: ResolvedView(region, topic, rule).read() for name, region in regions.items()}
        if all(view.keys() == views["us"].keys() and all(view[k].value == views["us"][k].value for k in view)
               for view in views.values()) and _quiet(regions, topic):
            return views
        if time.monotonic() > deadline:
            fail("the regions did not converge within 90 s: see `amity stats` and .amity/dev/mirror-worker-1.log")
        time.sleep(1)


def _quiet(regions: dict[str, Region], topic: str) -> bool:
    """Nothing changed in either region for a moment: no record is still on its way."""
    ends = [_end(region, topic) for region in regions.values()]
    time.sleep(2)
    return ends == [_end(region, topic) for region in regions.values()]


def _end(region: Region, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**region.kafka_config(), "group.id": "amity-demo-probe"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3))
    finally:
        consumer.close()


def _show(views: dict[str, dict], stats: dict, topic: str, url: str) -> None:
    keys = sorted(set().union(*(view.keys() for view in views.values())))
    table(f"Converged view of {topic} (last writer wins on hybrid logical clocks)",
          ["key", *[f"value in {name}" for name in views], "written in"],
          [(k.decode(), *[(v[k].value or b"").decode() if k in v else "(deleted)" for v in views.values()],
            next(iter(views.values()))[k].version.origin) for k in keys])
    table("Replication stats from the coordinator", ["link", "replicated", "loop drops", "conflict stale drops"],
          [(t["link"], t["total"]["replicated"], sum(t["total"]["dropped"].values()),
            t["total"]["conflicts"]["stale"]) for t in stats["topics"]])
    console.print(f"\nIdentical in every region: {len(keys)} keys. Coordinator: [bold]{url}[/] "
                  f"(API docs {url}/docs, dashboard {url}/ui). Stop everything with [bold]amity dev down[/].")
