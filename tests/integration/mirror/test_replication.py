"""Active-active, meshes and active-passive on real regions: every record once per region, no loops."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from confluent_kafka import Producer

from amity.headers import decode, find_provenance
from amity.regions import Region
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, free_port, wait_for


def full_mesh(names: list[str], topic: str) -> list[dict]:
    return [{"source": a, "destination": b, "include": [topic]} for a in names for b in names if a != b]


def produce_everywhere(regions: dict[str, Region], topic: str, per_region: int) -> None:
    def one(name: str) -> None:
        produce(regions[name].bootstrap, topic,
                [(f"key-{i % 50}".encode(), f"{name}-{i}".encode()) for i in range(per_region)])

    with ThreadPoolExecutor(len(regions)) as pool:
        list(pool.map(one, regions))


def values_when_complete(region: Region, topic: str, expected: int) -> Counter:
    return wait_for(lambda: _counted(region, topic, expected), timeout_s=90,
                    message=f"{expected} records in {topic} at {region.bootstrap}")


def _counted(region: Region, topic: str, expected: int) -> Counter | None:
    values = Counter(m.value() for m in read_all(region.bootstrap, topic))
    return values if sum(values.values()) >= expected else None


def counts(worker: MirrorProcess, link: str, topic: str) -> tuple[int | None, dict[str, int]]:
    """A link's replicated and dropped counts of `topic` in the worker's stats file.

    The file is written every few seconds, so it can lag the records already in the destination: a test
    waits for the counts it expects, and fails if they never come or overshoot.
    """
    stats = worker.topic_stats(link, topic)
    return stats.get("replicated"), stats.get("dropped", {})


def test_active_active_pair_delivers_each_record_once_and_never_back(regions, topic, tmp_path: Path) -> None:
    pair = {name: regions[name] for name in ("us", "eu")}
    for region in pair.values():
        create_topic(region.bootstrap, topic, partitions=3)
    port = free_port()
    with MirrorProcess(tmp_path, pair, full_mesh(["us", "eu"], topic),
                       env={"AMITY_MIRROR_METRICS_PORT": str(port)}) as worker:
        produce_everywhere(pair, topic, per_region=1000)
        for name, region in pair.items():
            values = values_when_complete(region, topic, 2000)
            assert set(values.values()) == {1}, f"duplicates in {name}"
            assert {v.split(b"-")[0] for v in values} == {b"us", b"eu"}
        for link in ("us-to-eu", "eu-to-us"):
            wait_for(lambda link=link: counts(worker, link, topic) == (1000, {"loop": 1000}),
                     message=f"1000 replicated and 1000 loop drops on {link}")
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert f'amity_mirror_dropped_total{{link="eu-to-us",reason="loop",topic="{topic}"}} 1000.0' in metrics
        assert f'amity_mirror_records_total{{link="us-to-eu",topic="{topic}"}} 1000.0' in metrics
    for name, region in pair.items():
        assert sum(Counter(m.value() for m in read_all(region.bootstrap, topic)).values()) == 2000


def test_mirrored_record_keeps_key_value_timestamp_partition_and_headers(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    # k2's timestamp is years old: under the default 7-day retention the broker deletes it at its next
    # retention check, which made this test fail whenever that check came first. The mirror copies retention.ms.
    create_topic(us.bootstrap, topic, partitions=4, config={"retention.ms": "-1"})
    produce(us.bootstrap, topic, [(b"k1", b"v1")], **{})
    original = read_all(us.bootstrap, topic)[0]
    producer = Producer({"bootstrap.servers": us.bootstrap})
    producer.produce(topic, key=b"k2", value=b"v2", partition=3, timestamp=1_700_000_000_123,
                     headers=[("trace", b"abc"), ("trace", b"def"), ("empty", b"")])
    assert producer.flush(10) == 0
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [{"source": "us", "destination": "eu", "include": [topic]}]):
        mirrored = wait_for(lambda: len(read_all(eu.bootstrap, topic)) == 2 and read_all(eu.bootstrap, topic),
                            message="2 records in eu")
    by_key = {m.key(): m for m in mirrored}
    assert by_key[b"k1"].partition() == original.partition()
    copy = by_key[b"k2"]
    assert (copy.value(), copy.partition(), copy.timestamp()[1]) == (b"v2", 3, 1_700_000_000_123)
    headers = copy.headers()
    assert [h for h in headers if h[0] != "amity-prov"] == [("trace", b"abc"), ("trace", b"def"), ("empty", b"")]
    provenance = decode(find_provenance(headers))
    assert (provenance.origin, provenance.topic, provenance.partition, provenance.path) == ("us", topic, 3, ("us", "eu"))
    assert provenance.timestamp_ms == 1_700_000_000_123


def test_three_region_mesh_delivers_each_record_once_everywhere(regions, topic, tmp_path: Path) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic, partitions=2)
    with MirrorProcess(tmp_path, regions, full_mesh(["us", "eu", "ap"], topic)) as worker:
        produce_everywhere(regions, topic, per_region=500)
        for name, region in regions.items():
            values = values_when_complete(region, topic, 1500)
            assert set(values.values()) == {1}, f"duplicates in {name}"
        for link in ("us-to-eu", "eu-to-ap", "ap-to-us"):
            def settled(link: str = link) -> bool:
                replicated, dropped = counts(worker, link, topic)
                return (replicated, sum(dropped.values())) == (500, 1000)
            wait_for(settled, message=f"500 replicated and 1000 drops on {link}")
    for region in regions.values():
        assert len(read_all(region.bootstrap, topic)) == 1500


def test_chain_carries_records_through_the_middle_region(regions, topic, tmp_path: Path) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic, partitions=1)
    chain = [{"source": a, "destination": b, "include": [topic]}
             for a, b in (("us", "eu"), ("eu", "us"), ("eu", "ap"), ("ap", "eu"))]
    with MirrorProcess(tmp_path, regions, chain):
        produce_everywhere(regions, topic, per_region=200)
        for name, region in regions.items():
            values = values_when_complete(region, topic, 600)
            assert set(values.values()) == {1}, f"duplicates in {name}"
    paths = {decode(find_provenance(m.headers())).path for m in read_all(regions["ap"].bootstrap, topic)
             if find_provenance(m.headers())}
    assert paths == {("us", "eu", "ap"), ("eu", "ap")}


def test_active_passive_with_prefix_naming_copies_topic_configs(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=3, config={"cleanup.policy": "compact", "retention.ms": "3600000"})
    produce(us.bootstrap, topic, [(f"k{i}".encode(), b"x") for i in range(100)])
    with MirrorProcess(tmp_path, {"us": us, "eu": eu},
                       [{"source": "us", "destination": "eu", "naming": "prefix", "include": [topic]}]):
        remote = f"us.{topic}"
        wait_for(lambda: _exists_with(eu, remote, 100), message=f"100 records in {remote}")
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": eu.bootstrap})
    assert len(admin.list_topics(remote, timeout=10).topics[remote].partitions) == 3
    resource = ConfigResource(ResourceType.TOPIC, remote)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"
    assert configs["retention.ms"].value == "3600000"
    assert configs["message.timestamp.type"].value == "CreateTime"
    assert topic not in admin.list_topics(timeout=10).topics


def _exists_with(region: Region, topic: str, count: int) -> bool:
    from tests.support.kafka import topic_exists

    return topic_exists(region.bootstrap, topic) and len(read_all(region.bootstrap, topic)) >= count
