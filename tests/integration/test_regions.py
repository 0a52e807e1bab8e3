"""The session's local regions are real, separate Kafka clusters with their own Redis."""

import json

import redis

from amity.regions import Region
from tests.support import cluster
from tests.support.kafka import create_topic, produce, read_all, topic_exists


def test_each_region_produces_and_consumes(regions: dict[str, Region], topic: str) -> None:
    for name, region in regions.items():
        create_topic(region.bootstrap, topic, partitions=3)
        records = [(f"k{i}".encode(), f"{name}-{i}".encode()) for i in range(50)]
        produce(region.bootstrap, topic, records)
        read = read_all(region.bootstrap, topic)
        assert sorted((m.key(), m.value()) for m in read) == sorted(records)


def test_each_region_has_its_own_redis(regions: dict[str, Region], topic: str) -> None:
    clients = {name: redis.Redis.from_url(region.redis) for name, region in regions.items()}
    for name, client in clients.items():
        client.set(f"test:{topic}", name)
    assert {name: client.get(f"test:{topic}") for name, client in clients.items()} == \
        {name: name.encode() for name in regions}


def test_regions_are_separate_clusters(regions: dict[str, Region], topic: str) -> None:
    create_topic(regions["us"].bootstrap, topic)
    assert topic_exists(regions["us"].bootstrap, topic)
    assert not topic_exists(regions["eu"].bootstrap, topic)
    assert not topic_exists(regions["ap"].bootstrap, topic)


def test_regions_file_lists_every_region(regions: dict[str, Region]) -> None:
    written = json.loads(cluster.test_settings().regions_file.read_text())
    # Tests that kill a region start spare ones (sa, af) in the same home: those are listed too.
    assert {name: written[name] for name in regions} == \
        {name: {"bootstrap": r.bootstrap, "redis": r.redis} for name, r in regions.items()}
    base = cluster.test_settings().base_port
    assert written["us"] == {"bootstrap": f"127.0.0.1:{base + 2}", "redis": f"redis://127.0.0.1:{base + 9}/0"}
