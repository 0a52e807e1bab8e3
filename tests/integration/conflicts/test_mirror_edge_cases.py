"""Records a resolving mirror must not trust or cannot order: dead-lettered with the reason, counted; keyless ones pass."""

import time
import uuid
from pathlib import Path

from confluent_kafka import Producer

from amity.clock import pack
from amity.headers import PROVENANCE_HEADER, encode_fields
from amity.links import Link
from amity.mirror.link import dlq_topic
from tests.support.kafka import create_topic, read_all
from tests.support.mirror import MirrorProcess, wait_for


def test_future_clocks_are_dead_lettered_and_keyless_records_pass(regions, topic, tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic)
    hour_ahead = pack(int(time.time() * 1000) + 3_600_000, 0)
    future = encode_fields("us", topic, 0, 0, 0, ("us",), hour_ahead, (("us", 1),))
    producer = Producer({"bootstrap.servers": us.bootstrap})
    producer.produce(topic, key=b"from-the-future", value=b"x", headers=[(PROVENANCE_HEADER, future)])
    producer.produce(topic, key=None, value=b"keyless")
    producer.produce(topic, key=b"plain", value=b"ok")
    producer.flush(10)

    worker = MirrorProcess(tmp_path, {"us": us, "eu": eu},
                           [{"source": "us", "destination": "eu", "include": [topic]}],
                           env={"AMITY_MIRROR_STATE_NAMESPACE": f"edge-{uuid.uuid4().hex[:8]}"})
    worker.add_rules([{"topic": topic, "policy": "lww", "max_skew_ms": 60_000}])
    with worker:
        copied = wait_for(lambda: len(read_all(eu.bootstrap, topic)) == 2 and read_all(eu.bootstrap, topic),
                          message="the keyless and the plain record in eu")
        stats = wait_for(lambda: (s := worker.topic_stats("us-to-eu", topic)).get("keyless") == 1 and s,
                         message="the keyless record counted")
    assert {m.key() for m in copied} == {None, b"plain"}
    assert stats["dead_lettered"] == {"clock-skew": 1}
    dead = [m for m in read_all(eu.bootstrap, dlq_topic(Link(source="us", destination="eu")))
            if f"/{topic}/" in dict(m.headers())["amity-dlq-source"].decode()]
    assert [(m.key(), dict(m.headers())["amity-dlq-reason"]) for m in dead] == [(b"from-the-future", b"clock-skew")]
