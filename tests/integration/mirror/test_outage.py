"""A cluster or Redis that goes down or stops answering: the link waits, says which, and resumes without loss."""

import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from amity.dev.environment import DevEnvironment
from amity.regions import Region
from amity.rules import ConflictRule
from amity.view import ResolvedView
from tests.support import cluster
from tests.support.cluster import frozen, kill_kafka, region_pid
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, wait_for


@pytest.fixture
def spare_region(regions) -> Region:
    """Region `sa`, started for a test that kills it; the session's teardown stops it with the rest."""
    state = DevEnvironment(cluster.test_settings()).up(["sa"])["sa"]
    return Region(name="sa", bootstrap=state.bootstrap, redis=state.redis)


def test_destination_outage_is_waited_out_without_loss(regions, spare_region: Region, topic, tmp_path: Path) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=2)
    with MirrorProcess(tmp_path, {"us": us, "sa": spare_region}, [{"source": "us", "destination": "sa", "include": [topic]}]) as worker:
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(2000)])
        wait_for(lambda: worker.topic_stats("us-to-sa", topic).get("replicated") == 2000, message="first 2000")
        wait_for(lambda: len(read_all(spare_region.bootstrap, topic)) == 2000, message="first 2000 in sa")
        kill_kafka("sa")
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(2000, 5000)])
        worker.wait_for_health("us-to-sa", False)
        DevEnvironment(cluster.test_settings()).up(["sa"])
        values = wait_for(lambda: _all(spare_region, topic, 5000), timeout_s=120, message="5000 in sa")
        worker.wait_for_health("us-to-sa", True)
        assert worker.alive()
    assert set(values) == {str(n).encode() for n in range(5000)}


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_destination_broker_that_stops_answering_is_waited_out_without_loss(regions, spare_region: Region, topic,
                                                                             delivery: str, tmp_path: Path) -> None:
    """A frozen broker keeps its connections open and acknowledges nothing: no error reaches the link, which must
    notice the stall itself, say so, and carry on once the broker answers."""
    us = regions["us"]
    for region in (us, spare_region):
        create_topic(region.bootstrap, topic, partitions=2)
    with MirrorProcess(tmp_path, {"us": us, "sa": spare_region},
                       [{"source": "us", "destination": "sa", "include": [topic], "delivery": delivery}]) as worker:
        produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(1000)])
        wait_for(lambda: worker.topic_stats("us-to-sa", topic).get("replicated") == 1000, message="first 1000")
        with frozen(region_pid("sa", "kafka")):
            produce(us.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(1000, 3000)])
            link = worker.wait_for_health("us-to-sa", False)
            assert "acknowledged nothing" in link["problem"], link["problem"]
            # while records wait unacknowledged the link is never caught up, however many turns it idles
            reported = _health_reports(worker, "us-to-sa", seconds=6)
            assert reported == {False}, "the link reported itself healthy while the destination acknowledged nothing"
            assert worker.alive()
        values = wait_for(lambda: _all(spare_region, topic, 3000), timeout_s=120, message="3000 in sa")
        worker.wait_for_health("us-to-sa", True)
        assert worker.alive()
    assert set(values) == {str(n).encode() for n in range(3000)}


def test_a_source_broker_that_stops_answering_is_named_and_waited_out(regions, spare_region: Region, topic,
                                                                       tmp_path: Path) -> None:
    """The link reads nothing from a frozen source, and its metadata requests time out: it says which region's
    Kafka does not answer, and replicates what was written there once it answers again."""
    eu = regions["eu"]
    for region in (eu, spare_region):
        create_topic(region.bootstrap, topic, partitions=2)
    with MirrorProcess(tmp_path, {"sa": spare_region, "eu": eu},
                       [{"source": "sa", "destination": "eu", "include": [topic]}]) as worker:
        produce(spare_region.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(1000)])
        wait_for(lambda: worker.topic_stats("sa-to-eu", topic).get("replicated") == 1000, message="first 1000")
        with frozen(region_pid("sa", "kafka")):
            link = worker.wait_for_health("sa-to-eu", False)
            assert link["problem"].startswith("Kafka of sa did not answer: "), link["problem"]
            assert worker.alive()
        produce(spare_region.bootstrap, topic, [(b"k", f"{n}".encode()) for n in range(1000, 3000)])
        values = wait_for(lambda: _all(eu, topic, 3000), timeout_s=120, message="3000 in eu")
        worker.wait_for_health("sa-to-eu", True)
    assert set(values) == {str(n).encode() for n in range(3000)}


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
@pytest.mark.parametrize("which", ["sa", "us"], ids=["destination", "source"])
def test_a_redis_that_stops_answering_is_waited_out_without_loss(regions, spare_region: Region, topic, which: str,
                                                                 delivery: str, tmp_path: Path) -> None:
    """A frozen Redis accepts connections and answers nothing, as one behind a network partition does: the
    resolved link must time out, report it, and resume once the Redis answers, not hang or lose a write.
    The source's Redis stamps the plain writes at their first hop, the destination's decides them."""
    us = regions["us"]
    for region in (us, spare_region):
        create_topic(region.bootstrap, topic, partitions=2)
    worker = MirrorProcess(tmp_path, {"us": us, "sa": spare_region},
                           [{"source": "us", "destination": "sa", "include": [topic], "delivery": delivery}],
                           env={"AMITY_MIRROR_REDIS_TIMEOUT_S": "1", "AMITY_MIRROR_RETRY_BACKOFF_MAX_S": "2"})
    worker.add_rules([{"topic": topic, "policy": "lww"}])
    written = [(f"k{n % 50}".encode(), f"{n}".encode()) for n in range(3000)]
    with worker:
        produce(us.bootstrap, topic, written[:1000])
        wait_for(lambda: worker.topic_stats("us-to-sa", topic).get("replicated") == 1000, message="first 1000")
        with frozen(region_pid(which, "redis")):
            produce(us.bootstrap, topic, written[1000:])
            link = worker.wait_for_health("us-to-sa", False, timeout_s=30)
            assert link["problem"].startswith(f"Redis of {which}: Timeout"), link["problem"]
            reported = _health_reports(worker, "us-to-sa", seconds=6)
            assert reported == {False}, "the link reported itself healthy between retries while the Redis was frozen"
            assert worker.alive()
        worker.wait_for_health("us-to-sa", True)
        view = wait_for(lambda: _view_when_complete(spare_region, topic, written), timeout_s=60, message="view in sa")
        copied = {(m.key(), m.value()) for m in read_all(spare_region.bootstrap, topic)}
        stale = worker.topic_stats("us-to-sa", topic).get("conflicts", {}).get("stale", 0)
        assert worker.alive()
    assert view == dict(written), "sa's resolved view is not the last write of each key"
    # A script sent before the freeze may run once the Redis answers again, after the link gave up on it: the
    # retry then finds later versions of a key held already, and drops the batch's earlier ones as stale.
    missing = set(written) - copied
    assert len(missing) <= stale
    assert all(any(k == key and int(v) > int(value) for k, v in copied) for key, value in missing), \
        "a record missing from sa was not superseded by a later write of its key"


def _health_reports(worker: MirrorProcess, link: str, seconds: float) -> set[bool]:
    """Every health the link's stats reported in `seconds`, read ten times a second (reports come every 0.5 s):
    a link that retries restarts its clients several times in that span."""
    reported = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        reported.add(worker.link_health(link).get("healthy"))
        time.sleep(0.1)
    return reported


def _view_when_complete(region: Region, topic: str, written: list[tuple[bytes, bytes]]) -> dict | None:
    """The region's resolved view ({key: value}) once each key's winner is among the last round of `written`
    (values are their indexes), else None: the caller compares it with the last write of each key."""
    keys = len({key for key, _ in written})
    view = {key: record.value for key, record in ResolvedView(region, topic, ConflictRule(topic=topic)).read().items()}
    return view if len(view) == keys and all(int(v) >= len(written) - keys for v in view.values()) else None


def _all(region: Region, topic: str, total: int) -> Counter | None:
    """The topic's values once it holds `total` distinct ones; None while the restarted broker is not ready yet
    (it answers NOT_LEADER_FOR_PARTITION until its partitions have a leader again)."""
    try:
        values = Counter(m.value() for m in read_all(region.bootstrap, topic))
    except KafkaException as exc:
        if not exc.args[0].retriable():
            raise
        return None
    return values if len(values) >= total else None
