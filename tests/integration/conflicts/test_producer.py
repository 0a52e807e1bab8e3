"""amity.Producer on real Kafka and Redis: stamps, the held version after acknowledgement, concurrent writers
in two regions converging once their versions are exchanged."""

import io
import json
import threading
from collections import defaultdict

import msgpack
import pytest
import redis

from amity import Producer, ResolvedView
from amity.headers import decode, find_provenance
from amity.ordering import MissingOrderingField
from amity.policies import Version, rank_bytes
from amity.rules import ConflictRule, RuleSet
from amity.state import may_expire
from tests.integration.conflicts.exchange import Link
from tests.support.kafka import create_topic, read_all


def rules_for(topic: str, policy: str = "lww", **options) -> RuleSet:
    return RuleSet(rules=[ConflictRule(topic=topic, policy=policy, **options)])


def provenances(bootstrap: str, topic: str) -> list:
    return [(m.key(), m.value(), decode(find_provenance(m.headers()))) for m in read_all(bootstrap, topic)]


def test_writes_are_stamped_with_the_region_clock_and_the_keys_vector(regions, clients, state_settings, topic):
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    with Producer(us, rules_for(topic), client=clients["us"], settings=state_settings) as producer:
        producer.produce_batch(topic, [(b"k", b"1"), (b"j", b"1", {"trace": b"as a dict"}),
                                       (b"k", b"2", [("trace", b"t1")])])
        producer.produce(topic, b"k", None)
        producer.produce(topic, None, b"keyless")
    records = read_all(us.bootstrap, topic)
    stamped = [decode(find_provenance(m.headers())) for m in records[:4]]
    assert [(p.origin, p.path, p.vector) for p in stamped] == [
        ("us", ("us",), (("us", 1),)), ("us", ("us",), (("us", 1),)),
        ("us", ("us",), (("us", 2),)), ("us", ("us",), (("us", 3),))]
    k_clocks = [stamped[i].hlc for i in (0, 2, 3)]
    assert k_clocks == sorted(set(k_clocks))
    assert records[2].headers()[0] == ("trace", b"t1"), "the caller's headers are kept, in order, before ours"
    assert records[1].headers()[0] == ("trace", b"as a dict"), "headers may be a dict, as confluent-kafka takes"
    assert records[4].headers() is None, "keyless records are not resolved, so not stamped"
    assert records[0].timestamp()[1] == stamped[0].timestamp_ms
    state = producer.state.read(topic, b"k")
    assert state[b"r"] == rank_bytes(rules_for(topic).rules[0], Version(stamped[3].hlc, "us", (("us", 3),), True))


RULE_OPTIONS = {"lww": {}, "timestamp": {"field": "json:at"}, "region-priority": {"regions": ["eu", "us"]},
                "vector": {}, "vector-by-priority": {"fallback": "region-priority", "regions": ["eu", "us"]}}


@pytest.mark.parametrize("name", sorted(RULE_OPTIONS))
def test_the_held_version_is_the_one_the_header_carries_under_every_policy(regions, clients, state_settings, topic,
                                                                             name) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    rules = rules_for(topic, name.removesuffix("-by-priority"), **RULE_OPTIONS[name])
    # Each key's writes in rising order under every policy (the delete last), so its last record is its winner.
    writes = [(f"k{i % 3}".encode(), json.dumps({"at": 100 + i}).encode()) for i in range(7)] + [(b"k1", None)]
    with Producer(us, rules, client=clients["us"], settings=state_settings) as producer:
        producer.produce_batch(topic, writes[:4])
        producer.produce_batch(topic, writes[4:])
    last = {key: (value, provenance) for key, value, provenance in provenances(us.bootstrap, topic)}
    assert sorted(last) == [b"k0", b"k1", b"k2"]
    for key, (value, provenance) in last.items():
        field = json.loads(value)["at"] if name == "timestamp" and value is not None else None
        version = Version(provenance.hlc, "us", provenance.vector, value is None, field)
        state = producer.state.read(topic, key)
        assert state[b"r"] == rank_bytes(rules.rules[0], version), f"{key!r}: held rank is the header's version's"
        assert dict(msgpack.unpackb(state[b"v"], raw=False)) == dict(provenance.vector)
        expires = value is None and may_expire(rules.rules[0])
        assert (clients["us"].pttl(producer.state.state_key(topic, key)) > 0) == expires, "only a tombstone expires"


def test_the_held_version_advances_only_once_kafka_acknowledged_the_write(regions, clients, state_settings, topic):
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    failures = []
    producer = Producer(us, rules_for(topic), {"message.timeout.ms": 2000}, client=clients["us"],
                        settings=state_settings)
    producer.produce(topic, b"k", b"v", partition=7, on_delivery=lambda err, msg: failures.append(err))
    assert set(producer.state.read(topic, b"k")) == {b"m", b"h"}, "stamped: the context moved, the held did not"
    producer.flush(30)
    assert len(failures) == 1 and failures[0] is not None
    assert b"r" not in producer.state.read(topic, b"k"), "a failed write never becomes the held version"
    producer.produce(topic, b"k", b"v")
    assert b"r" not in producer.state.read(topic, b"k")
    producer.flush(30)
    assert b"r" in producer.state.read(topic, b"k")


def test_a_landing_redis_refused_is_landed_by_the_next_flush(regions, clients, state_settings, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    with Producer(us, rules_for(topic), client=clients["us"], settings=state_settings) as producer:
        producer.tails.state.register("a-mirror", [(topic, 0)])  # a second writer: the landing counts
        land = producer.tails.state.land

        def unreachable(landings, writer):
            producer.tails.state.land = land
            raise redis.ConnectionError("Redis went away while landing")

        producer.tails.state.land = unreachable
        producer.produce(topic, b"k", b"v", partition=0)
        with pytest.raises(redis.ConnectionError):
            producer.flush(30)
        assert b"l" not in producer.state.read(topic, b"k"), "the landing failed"
        producer.flush(30)
    tail_partition, tail_offset, *_ = msgpack.Unpacker(io.BytesIO(producer.state.read(topic, b"k")[b"l"]), raw=True)
    assert (tail_partition, tail_offset) == (0, 0), "the write at partition 0, offset 0 is the key's landed tail"


def test_a_write_the_timestamp_policy_cannot_order_is_refused_before_anything_is_stamped(
        regions, clients, state_settings, topic) -> None:
    rules = rules_for(topic, "timestamp", field="json:at")
    producer = Producer(regions["us"], rules, client=clients["us"], settings=state_settings)
    with pytest.raises(MissingOrderingField):
        producer.produce_batch(topic, [(b"k", json.dumps({"at": 5}).encode()), (b"j", b"{}")])
    assert producer.state.read(topic, b"k") == {} and len(producer) == 0


def test_concurrent_writers_in_two_regions_stamp_apart_and_converge(regions, state_settings, topic) -> None:
    pair = {name: regions[name] for name in ("us", "eu")}
    for region in pair.values():
        create_topic(region.bootstrap, topic, partitions=3)
    rules = rules_for(topic, "vector")
    keys = [f"key-{i}".encode() for i in range(5)]
    threads_per_region, batches = 3, 6

    def writer(name: str, thread: int) -> None:
        with Producer(pair[name], rules, settings=state_settings) as producer:
            for batch in range(batches):
                producer.produce_batch(topic, [(key, f"{name}-{thread}-{batch}".encode()) for key in keys])
                producer.poll(0)

    workers = [threading.Thread(target=writer, args=(name, t)) for name in pair for t in range(threads_per_region)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    for name, region in pair.items():
        own = defaultdict(list)
        for key, _, provenance in provenances(region.bootstrap, topic):
            own[key].append(provenance)
        for key in keys:
            # A repeated stamp is a tail repair's copy of the same record (amity.tails), never a second write.
            writes = {p.hlc: p for p in own[key]}
            counters = sorted(dict(p.vector)[name] for p in writes.values())
            assert counters == list(range(1, threads_per_region * batches + 1)), f"{name} {key}: one stamp per write"
            assert all(writes[p.hlc] == p for p in own[key])

    us_to_eu = Link(pair["us"], pair["eu"], rules, state_settings)
    eu_to_us = Link(pair["eu"], pair["us"], rules, state_settings)
    us_to_eu.replicate(topic)
    eu_to_us.replicate(topic)
    views = {name: ResolvedView(region, topic, rules.rule_for(topic)).read() for name, region in pair.items()}
    assert {k: r.version for k, r in views["us"].items()} == {k: r.version for k, r in views["eu"].items()}
    assert set(views["us"]) == set(keys)
    lost = sum(link.outcomes[v] for link in (us_to_eu, eu_to_us) for v in ("stale", "conflict-stale"))
    assert lost > 0, "each key's winner was held where it was written, so the other region's writes lose there"
