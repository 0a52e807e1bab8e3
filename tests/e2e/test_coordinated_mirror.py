"""The user's path: regions and a mesh through the CLI, workers assigned by the coordinator, stats back."""

from collections import Counter
from pathlib import Path

from amity.headers import decode, find_provenance
from amity.regions import Region
from tests.e2e.conftest import Cli
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import wait_for
from tests.support.worker import CoordinatedWorker


def counts(region: Region, topic: str) -> Counter:
    return Counter(m.value() for m in read_all(region.bootstrap, topic))


def link_totals(cli: Cli, link: str, topic: str) -> dict:
    view = cli.json("stats", "--link", link, "--topic", topic)
    return next((entry["total"] for entry in view["topics"] if entry["link"] == link), {})


def test_mesh_through_the_cli_replicates_and_survives_a_worker_death(regions, coordinator: Cli, topic,
                                                                     tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic, partitions=2)
        coordinator("region", "add", region.name, "--bootstrap", region.bootstrap, "--redis", region.redis)
    coordinator("mesh", "us", "eu", "--include", topic)
    assert {link["id"] for link in coordinator.json("link", "list")} == {"us-to-eu", "eu-to-us"}

    first = CoordinatedWorker(tmp_path, coordinator.url).start()
    try:
        produce(us.bootstrap, topic, [(b"k", f"us-{n}".encode()) for n in range(300)])
        produce(eu.bootstrap, topic, [(b"k", f"eu-{n}".encode()) for n in range(300)])
        for region in (us, eu):
            wait_for(lambda region=region: sum(counts(region, topic).values()) == 600, timeout_s=60,
                     message=f"600 records in {region.name}")
        totals = wait_for(lambda: (t := link_totals(coordinator, "eu-to-us", topic)).get("replicated") == 300 and t,
                          message="coordinator stats for eu-to-us")
        assert totals["dropped"] == {"loop": 300}
        first.kill9()

        second = CoordinatedWorker(tmp_path, coordinator.url).start()
        try:
            produce(us.bootstrap, topic, [(b"k", f"us-late-{n}".encode()) for n in range(100)])
            wait_for(lambda: sum(counts(eu, topic).values()) >= 700, timeout_s=60, message="700 records in eu")
        finally:
            assert second.stop() == 0
    finally:
        if first.alive():
            first.stop()
    expected = {f"us-{n}" for n in range(300)} | {f"eu-{n}" for n in range(300)} | {f"us-late-{n}" for n in range(100)}
    for region in (us, eu):
        assert {v.decode() for v in counts(region, topic)} == expected, f"records lost in {region.name}"
    looped = [m for m in read_all(us.bootstrap, topic)
              if find_provenance(m.headers()) and decode(find_provenance(m.headers())).origin == "us"]
    assert looped == [], "records came back to their origin"
    workers = coordinator.json("coordinator", "workers")
    assert workers, "the coordinator lists its workers"
