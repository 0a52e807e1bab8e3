"""New topics and new partitions in the source show up in the destination within seconds."""

from pathlib import Path

from confluent_kafka.admin import AdminClient, NewPartitions

from tests.support.kafka import create_topic, produce, read_all, topic_exists
from tests.support.mirror import MirrorProcess, wait_for


def test_new_topics_and_partitions_are_discovered(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    links = [{"source": "us", "destination": "eu", "include": [f"{topic}.*"]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links):
        later = f"{topic}-later"
        create_topic(us.bootstrap, later, partitions=2)
        produce(us.bootstrap, later, [(b"k", b"v")])
        wait_for(lambda: topic_exists(eu.bootstrap, later) and len(read_all(eu.bootstrap, later)) == 1,
                 timeout_s=30, message=f"{later} replicated")
        admin = AdminClient({"bootstrap.servers": us.bootstrap})
        admin.create_partitions([NewPartitions(later, 4)])[later].result(10)
        eu_admin = AdminClient({"bootstrap.servers": eu.bootstrap})
        wait_for(lambda: len(eu_admin.list_topics(later, timeout=5).topics[later].partitions) == 4,
                 timeout_s=30, message="destination grown to 4 partitions")


def test_excluded_topics_are_not_replicated(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    kept, skipped = f"{topic}-kept", f"{topic}-skip"
    for name in (kept, skipped):
        create_topic(us.bootstrap, name)
        produce(us.bootstrap, name, [(b"k", b"v")])
    links = [{"source": "us", "destination": "eu", "include": [f"{topic}.*"], "exclude": [".*-skip"]}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links):
        wait_for(lambda: topic_exists(eu.bootstrap, kept) and len(read_all(eu.bootstrap, kept)) == 1,
                 message=f"{kept} replicated")
    assert not topic_exists(eu.bootstrap, skipped)
