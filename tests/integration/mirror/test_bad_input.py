"""Malformed, forged and oversized records are dead-lettered with a reason; replication goes on."""

import time
from pathlib import Path

import msgpack
import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from amity.headers import PROVENANCE_HEADER, Provenance, encode
from amity.mirror.link import dlq_topic
from amity.links import Link
from tests.support.kafka import create_topic, read_all
from tests.support.mirror import MirrorProcess, wait_for


HUGE_KEY = 17 * 1024 * 1024  # above the 16 MiB the dead-letter topic and the mirror's producer take


def forged_from_elsewhere(topic: str) -> bytes:
    """Claims to have been written into ap last, yet it sits in us: replayed or forged."""
    return encode(Provenance(origin="eu", topic=topic, partition=0, offset=5, timestamp_ms=1,
                             path=("eu", "ap"), hlc=None, vector=None))


def test_bad_headers_and_oversized_records_are_dead_lettered(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=1)
    create_topic(eu.bootstrap, topic, partitions=1, config={"max.message.bytes": "20000"})
    bad = {
        b"bad-msgpack": b"\xc1\xc1\xc1",
        b"unknown-version": msgpack.packb([99, "us", topic, 0, 0, 0, ["us"], None, None]),
        b"bad-type": msgpack.packb([1, "us", topic, "zero", 0, 0, ["us"], None, None]),
        b"forged": forged_from_elsewhere(topic),
    }
    # Compressed, a batch takes a record larger than any topic's limit: its key is larger than the dead letter's.
    producer = Producer({"bootstrap.servers": us.bootstrap, "compression.type": "lz4",
                         "message.max.bytes": 64 * 1024 * 1024})
    producer.produce(topic, key=b"before", value=b"ok")
    for key, header in bad.items():
        producer.produce(topic, key=key, value=b"payload", headers=[(PROVENANCE_HEADER, header)])
    producer.produce(topic, key=b"too-large", value=b"x" * 50_000)
    producer.produce(topic, key=b"k" * HUGE_KEY, value=b"huge key")
    producer.produce(topic, key=b"after", value=b"ok")
    producer.flush(10)

    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [{"source": "us", "destination": "eu", "include": [topic]}]) as worker:
        copied = wait_for(lambda: _keys(eu.bootstrap, topic) == {b"before", b"after"} and True,
                          message="good records on both sides of the bad ones")
        dlq = dlq_topic(Link(source="us", destination="eu"))
        dead = wait_for(lambda: len(_dead_letters(eu.bootstrap, dlq, topic)) == 6 and
                        _dead_letters(eu.bootstrap, dlq, topic), message="6 dead letters")
        wait_for(lambda: sum(worker.topic_stats("us-to-eu", topic).get("dead_lettered", {}).values()) == 6,
                 message="6 dead letters counted")
        counted = worker.topic_stats("us-to-eu", topic)["dead_lettered"]
    assert copied
    reasons = {m.key(): dict(m.headers())["amity-dlq-reason"].decode() for m in dead}
    assert reasons == {b"bad-msgpack": "bad-msgpack", b"unknown-version": "unknown-version",
                       b"bad-type": "bad-type", b"forged": "forged", b"too-large": "too-large", None: "too-large"}
    assert counted == {"bad-msgpack": 1, "unknown-version": 1, "bad-type": 1, "forged": 1, "too-large": 2}
    huge = next(dict(m.headers()) for m in dead if m.key() is None)
    assert huge["amity-dlq-key-omitted"] == str(HUGE_KEY).encode()
    sources = {dict(m.headers())["amity-dlq-source"].decode() for m in dead}
    assert f"us/{topic}/0/5" in sources


def _dead_letters(bootstrap: str, dlq: str, topic: str) -> list:
    """The link's dead letters that came from `topic` (the DLQ is shared by every test on the link)."""
    return [m for m in read_all(bootstrap, dlq) if f"/{topic}/" in dict(m.headers())["amity-dlq-source"].decode()]


def _keys(bootstrap: str, topic: str) -> set:
    return {m.key() for m in read_all(bootstrap, topic)}


def test_a_topic_the_destination_refuses_waits_in_the_source_while_the_others_flow(regions, topic,
                                                                                   tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    long_topic = f"{topic}-" + "x" * (248 - len(topic) - 1)  # 248 characters; prefixed "us." it is past Kafka's 249
    for name in (long_topic, topic):
        create_topic(us.bootstrap, name, partitions=1)
    producer = Producer({"bootstrap.servers": us.bootstrap})
    for name in (long_topic, topic):
        producer.produce(name, key=b"k", value=b"v")
    producer.flush(10)

    link = {"source": "us", "destination": "eu", "include": [f"{topic}.*"], "naming": "prefix"}
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [link]) as worker:
        wait_for(lambda: _keys(eu.bootstrap, f"us.{topic}") == {b"k"}, message="the other topic replicated")
        refused = wait_for(lambda: "refused to create" in worker.log.read_text(errors="replace"),
                           message="the refusal logged")
        assert worker.alive()
        assert worker.link_health("us-to-eu")["healthy"] is True
    assert refused
    assert f"so {long_topic} is not replicated" in worker.log.read_text(errors="replace")


def test_keyless_records_for_a_compacted_destination_are_dead_lettered(regions, topic, tmp_path: Path) -> None:
    dead = _refused_between_two(regions, topic, tmp_path, {"cleanup.policy": "compact"}, key=None)
    assert [(m.value(), dict(m.headers())["amity-dlq-reason"]) for m in dead] == [(b"refused", b"keyless-compacted")]


def test_a_record_whose_timestamp_the_destination_refuses_is_dead_lettered(regions, topic, tmp_path: Path) -> None:
    """The source takes a record two hours old; the destination topic only what is at most an hour old. The
    destination's refusal switches the check on, and the record is dead-lettered when read again."""
    dead = _refused_between_two(regions, topic, tmp_path, {"message.timestamp.before.max.ms": "3600000"},
                                timestamp=int(time.time() * 1000) - 7_200_000)
    assert [(m.key(), dict(m.headers())["amity-dlq-reason"]) for m in dead] == [(b"refused", b"timestamp-refused")]


def _refused_between_two(regions, topic: str, tmp_path: Path, destination_config: dict[str, str],
                         key: bytes | None = b"refused", timestamp: int = 0) -> list:
    """Mirror one record the destination topic refuses between two it takes; the dead letters of the topic, once
    the two arrived."""
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=1)
    create_topic(eu.bootstrap, topic, partitions=1, config=destination_config)
    producer = Producer({"bootstrap.servers": us.bootstrap})
    producer.produce(topic, key=b"before", value=b"ok")
    producer.produce(topic, key=key, value=b"refused", timestamp=timestamp)
    producer.produce(topic, key=b"after", value=b"ok")
    producer.flush(10)
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [{"source": "us", "destination": "eu", "include": [topic]}]):
        wait_for(lambda: _keys(eu.bootstrap, topic) == {b"before", b"after"}, message="the records it takes")
        dlq = dlq_topic(Link(source="us", destination="eu"))
        return wait_for(lambda: _dead_letters(eu.bootstrap, dlq, topic), message="the refused record dead-lettered")


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_record_the_destination_refuses_after_the_link_looked_is_dead_lettered(regions, topic, tmp_path: Path,
                                                                                 delivery: str) -> None:
    """The destination topic turns compacted while the link runs, and the link only looks at its configuration
    again in an hour: the broker refuses the request with the keyless record and the record after it
    (INVALID_RECORD for both): the link rewinds (aborts), writes each alone, finds which one is refused, and
    dead-letters that one only, instead of writing them into the same refusal forever."""
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=1)
    create_topic(eu.bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": us.bootstrap})
    producer.produce(topic, key=b"before", value=b"ok")
    producer.flush(10)
    env = {"AMITY_MIRROR_DISCOVERY_INTERVAL_S": "3600"}
    link = {"source": "us", "destination": "eu", "include": [topic], "delivery": delivery}
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [link], env=env) as worker:
        wait_for(lambda: _keys(eu.bootstrap, topic) == {b"before"}, message="the first record")
        _compact(eu.bootstrap, topic)
        producer.produce(topic, key=None, value=b"refused")
        producer.produce(topic, key=b"after", value=b"ok")
        producer.flush(10)
        wait_for(lambda: b"after" in _keys(eu.bootstrap, topic), message="the record after it")
        dead = wait_for(lambda: _dead_letters(eu.bootstrap, dlq_topic(Link(source="us", destination="eu")), topic),
                        message="the refused record dead-lettered")
        assert worker.alive()
    copied = read_all(eu.bootstrap, topic)
    assert {m.key() for m in copied if m.key() is not None} == {b"before", b"after"}
    assert b"refused" not in {m.value() for m in copied}, "the refused record is in the dead letters only"
    assert [(m.value(), dict(m.headers())["amity-dlq-reason"]) for m in dead] == [(b"refused", b"refused")]
    assert b"Broker failed to validate record" in dict(dead[0].headers())["amity-dlq-detail"]
    assert "retrying in" not in worker.log.read_text(errors="replace"), "the link never restarted"


def test_a_transaction_refused_while_the_next_batch_is_read_loses_and_duplicates_nothing(regions, topic,
                                                                                        tmp_path: Path) -> None:
    """Exactly-once links read and route the next batch while a batch's transactions commit. Batches of 50
    records stream through one partition and one transaction is refused (its keyless record, the destination
    turned compacted): the partition is rewound, the batch read meanwhile drops its share of it, and every keyed
    record lands once."""
    us, eu = regions["us"], regions["eu"]
    create_topic(us.bootstrap, topic, partitions=1)
    create_topic(eu.bootstrap, topic, partitions=1)
    producer = Producer({"bootstrap.servers": us.bootstrap, "linger.ms": 5})
    producer.produce(topic, key=b"before", value=b"ok")
    producer.flush(10)
    env = {"AMITY_MIRROR_DISCOVERY_INTERVAL_S": "3600", "AMITY_MIRROR_TRANSACTION_BATCH_SIZE": "50"}
    link = {"source": "us", "destination": "eu", "include": [topic], "delivery": "exactly-once"}
    keys = [b"k%d" % i for i in range(3000)]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, [link], env=env) as worker:
        wait_for(lambda: _keys(eu.bootstrap, topic) == {b"before"}, message="the first record")
        _compact(eu.bootstrap, topic)
        for i, key in enumerate(keys):
            producer.produce(topic, key=key, value=b"ok")
            if i == len(keys) // 2:
                producer.produce(topic, key=None, value=b"refused")
            if i % 100 == 99:
                producer.flush(10)
                time.sleep(0.01)
        producer.flush(10)
        wait_for(lambda: keys[-1] in _keys(eu.bootstrap, topic), message="the last record", timeout_s=120)
        dead = wait_for(lambda: _dead_letters(eu.bootstrap, dlq_topic(Link(source="us", destination="eu")), topic),
                        message="the refused record dead-lettered")
        assert worker.alive()
    copied = [m.key() for m in read_all(eu.bootstrap, topic) if m.value() == b"ok"]
    assert sorted(copied) == sorted([b"before", *keys]), "every keyed record once, none lost, none twice"
    assert [m.value() for m in dead] == [b"refused"]
    log = worker.log.read_text(errors="replace")
    assert "rewinding" in log, "a transaction failed and was rewound"
    assert "was rewound while this batch was read" in log, "the batch read during the failed commit was dropped"


def _compact(bootstrap: str, topic: str) -> None:
    """Make `topic` compacted, and wait until its broker refuses a keyless record (probes it took stay in it)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    change = ConfigResource(ConfigResource.Type.TOPIC, topic,
                            incremental_configs=[ConfigEntry("cleanup.policy", "compact",
                                                             incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([change])[change].result(10)
    refused: list = []
    probe = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 5000})

    def keyless_refused() -> bool:
        probe.produce(topic, value=b"probe", on_delivery=lambda err, msg: refused.append(err))
        probe.flush(10)
        return refused[-1] is not None and refused[-1].code() == KafkaError.INVALID_RECORD

    wait_for(keyless_refused, message=f"{topic} refusing keyless records")
