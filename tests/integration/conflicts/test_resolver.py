"""The Resolver and Stamper on real Redis and Kafka: batch order, redelivery after an aborted write, one round
trip per batch, conflicts, tombstones, and one stamp per first-hop record across links."""

import time

import pytest
import redis
from confluent_kafka import Producer

from amity.clock import pack, wall_clock_ms
from amity.headers import decode, find_provenance
from amity.policies import Version, rank_bytes
from amity.resolver import Incoming, Reason, Resolver, Stamper, Verdict
from amity.rules import ConflictRule, RuleSet
from amity.state import REFUSED
from amity.view import ResolvedView
from tests.integration.conflicts.exchange import CountingRedis, Link
from tests.support.kafka import create_topic, produce, read_all


def rules_for(topic: str, policy: str = "lww", **options) -> RuleSet:
    return RuleSet(rules=[ConflictRule(topic=topic, policy=policy, **options)])


def arriving(topic: str, key: bytes, value: bytes | None, hlc: int, origin: str = "us",
             vector=(("us", 1),)) -> Incoming:
    return Incoming(topic, key, value, [], origin, hlc >> 16, hlc, vector, 0, 0)


def verdicts(outcomes) -> list[Verdict]:
    return [outcome.verdict for outcome in outcomes]


def test_a_version_whose_write_aborted_is_written_again_when_redelivered(regions, clients, state_settings, topic):
    eu = regions["eu"]
    create_topic(eu.bootstrap, topic)
    resolver = Resolver(clients["eu"], rules_for(topic), "eu", settings=state_settings)
    now = pack(wall_clock_ms(), 0)
    version = arriving(topic, b"k", b"v1", now)
    producer = Producer({"bootstrap.servers": eu.bootstrap, "transactional.id": f"test-{topic}"})
    producer.init_transactions(30)

    assert verdicts(resolver.resolve([version])) == [Verdict.APPLY]  # Redis now holds v1 ...
    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"v1")
    producer.abort_transaction(30)  # ... but the write did not happen: the link rewinds and delivers it again
    [again] = resolver.resolve([version])
    assert again.verdict is Verdict.DUPLICATE and again.writes
    producer.begin_transaction()
    producer.produce(topic, key=b"k", value=b"v1")
    producer.commit_transaction(30)

    assert [m.value() for m in read_all(eu.bootstrap, topic)] == [b"v1"]
    older = arriving(topic, b"k", b"v0", now - 1)
    [late] = resolver.resolve([older])
    assert late.verdict is Verdict.STALE and not late.writes


def test_versions_of_one_key_in_one_batch_are_decided_in_batch_order(clients, state_settings, topic) -> None:
    resolver = Resolver(clients["eu"], rules_for(topic), "eu", settings=state_settings)
    now = pack(wall_clock_ms(), 0)
    v1, v2, v0 = (arriving(topic, b"k", b"v", now + i) for i in (1, 2, 0))
    other = arriving(topic, b"other", b"v", now)
    assert verdicts(resolver.resolve([v1, v2, other, v0, v2, v1])) == [
        Verdict.APPLY, Verdict.APPLY, Verdict.APPLY, Verdict.STALE, Verdict.DUPLICATE, Verdict.STALE]


def test_a_batch_of_5000_records_costs_one_redis_round_trip(regions, state_settings, topic) -> None:
    client = CountingRedis.from_url(regions["eu"].redis)
    resolver = Resolver(client, rules_for(topic), "eu", settings=state_settings)
    resolver.state.open()
    now = pack(wall_clock_ms(), 0)
    batch = [arriving(topic, f"key-{i}".encode(), b"v", now + i, vector=(("eu", 1), ("us", i + 1)))
             for i in range(5000)]
    resolver.resolve(batch[:1])  # loads the script once
    client.sent.clear()
    started = time.perf_counter()
    outcomes = resolver.resolve(batch)
    elapsed = time.perf_counter() - started
    assert client.sent == client.one_call_of(resolver.state, "AMITY.APPLY")
    assert verdicts(outcomes).count(Verdict.APPLY) == 4999 and outcomes[0].verdict is Verdict.DUPLICATE
    print(f"\nresolved 5000 records in {elapsed * 1e3:.1f} ms: {elapsed / 5000 * 1e6:.1f} µs/record")


def test_concurrent_versions_under_the_vector_policy_are_conflicts_naming_the_held_version(
        clients, state_settings, topic) -> None:
    resolver = Resolver(clients["eu"], rules_for(topic, "vector"), "eu", settings=state_settings)
    now = pack(wall_clock_ms(), 0)
    from_us = arriving(topic, b"k", b"us", now, "us", (("us", 1),))
    from_ap = arriving(topic, b"k", b"ap", now + 1, "ap", (("ap", 1),))
    after_both = arriving(topic, b"k", b"eu", now + 2, "eu", (("ap", 1), ("eu", 1), ("us", 1)))
    first, conflict, newer = resolver.resolve([from_us, from_ap, after_both])
    assert (first.verdict, newer.verdict) == (Verdict.APPLY, Verdict.APPLY)
    assert conflict.verdict is Verdict.CONFLICT_APPLIED and conflict.writes
    assert conflict.held == Version(now, "us", (("us", 1),))
    [lost] = resolver.resolve([arriving(topic, b"k", b"ap", now + 1, "ap", (("ap", 2),))])
    assert lost.verdict is Verdict.CONFLICT_STALE and lost.held.origin == "eu"


def test_a_delete_is_not_undone_by_an_older_write_and_its_state_expires_until_a_write_returns(
        clients, state_settings, topic) -> None:
    resolver = Resolver(clients["eu"], rules_for(topic), "eu", settings=state_settings)
    key = resolver.state.state_key(topic, b"k")
    now = pack(wall_clock_ms(), 0)
    write, delete, late = (arriving(topic, b"k", value, now + i) for value, i in ((b"v", 1), (None, 2), (b"old", 0)))
    assert verdicts(resolver.resolve([write])) == [Verdict.APPLY] and clients["eu"].pttl(key) == -1
    assert verdicts(resolver.resolve([delete])) == [Verdict.APPLY]
    assert 0 < clients["eu"].pttl(key) <= state_settings.tombstone_ttl_ms
    assert verdicts(resolver.resolve([late])) == [Verdict.STALE]
    assert verdicts(resolver.resolve([arriving(topic, b"k", b"back", now + 3)])) == [Verdict.APPLY]
    assert clients["eu"].pttl(key) == -1


def test_a_plain_clients_record_gets_one_stamp_on_every_link_out_of_its_region(
        regions, clients, state_settings, topic) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic)
    produce(regions["us"].bootstrap, topic, [(b"k", b"v1"), (b"k", b"v2"), (b"j", None)])
    rules = rules_for(topic)
    to_eu = Link(regions["us"], regions["eu"], rules, state_settings)
    to_ap = Link(regions["us"], regions["ap"], rules, state_settings)
    assert verdicts(to_eu.replicate(topic)) == [Verdict.APPLY] * 3
    assert verdicts(to_ap.replicate(topic)) == [Verdict.APPLY] * 3
    stamps = {name: [(m.key(), decode(find_provenance(m.headers()))) for m in read_all(regions[name].bootstrap, topic)]
              for name in ("eu", "ap")}
    assert [(k, p.hlc, p.vector) for k, p in stamps["eu"]] == [(k, p.hlc, p.vector) for k, p in stamps["ap"]]
    assert [p.vector for _, p in stamps["eu"]] == [(("us", 1),), (("us", 2),), (("us", 1),)]
    held = Stamper(clients["us"], rules, "us", settings=state_settings).state.read(topic, b"k")
    latest = stamps["eu"][1][1]
    assert held[b"r"] == rank_bytes(rules.rule_for(topic), Version(latest.hlc, "us", latest.vector)), \
        "the source holds its own latest write"
    views = [ResolvedView(regions[name], topic, rules.rule_for(topic)).read() for name in ("eu", "ap")]
    assert views[0] == views[1]
    assert {k: r.value for k, r in views[0].items()} == {b"k": b"v2"}


@pytest.mark.parametrize("first_hop", ["state", "timestamp"])
def test_a_plain_record_refused_at_its_first_hop_is_refused_by_every_link_out_of_its_region(
        regions, state_settings, topic, first_hop: str) -> None:
    """The refusal is memoised: a link whose clock has caught up with the record refuses it too, so no region gets
    a record another never will. Alike whether first hops are stamped from the state or from the timestamp."""
    client = redis.Redis.from_url(regions["us"].redis)
    future = Incoming(topic, b"k", b"v", [], "us", wall_clock_ms() + 3_600_000, partition=0, offset=0)
    rules = rules_for(topic, first_hop=first_hop)
    now = Stamper(client, rules, "us", settings=state_settings)
    caught_up = Stamper(client, rules, "us", settings=state_settings, now_ms=lambda: wall_clock_ms() + 3_600_000)
    [refused] = now.stamp([future])
    [also] = caught_up.stamp([future])
    assert refused.verdict is Verdict.DEAD and refused.reason == "clock-skew" and "ahead" in refused.detail
    assert also.verdict is Verdict.DEAD and also.reason == "clock-skew" and "another link" in also.detail
    assert now.state.read(topic, b"k") == {}, "a refusal touches no key state"
    assert now.state.memoised(topic, [(0, 0)]) == [REFUSED]
    stamped = Incoming(topic, b"j", b"v", [], "us", wall_clock_ms(), hlc=pack(wall_clock_ms(), 0), vector=(("us", 1),))
    columns = now.stamp_batch([stamped, future])
    assert columns.hlcs == [stamped.hlc, None] and columns.vectors == [None, None] and columns.keys == [None, None]
    assert columns.dead[0] is None and columns.dead[1].reason is Reason.CLOCK_SKEW


@pytest.mark.parametrize("first_hop", ["state", "timestamp"])
def test_a_link_behind_a_record_takes_the_stamp_another_link_gave_it(regions, state_settings, topic,
                                                                      first_hop: str) -> None:
    """Also a record that link passed and this one's clock would refuse."""
    client = redis.Redis.from_url(regions["us"].redis)
    ahead = Incoming(topic, b"k", b"v", [], "us", wall_clock_ms() + 3_600_000, partition=0, offset=1)
    rules = rules_for(topic, first_hop=first_hop)
    caught_up = Stamper(client, rules, "us", settings=state_settings, now_ms=lambda: wall_clock_ms() + 3_600_000)
    behind = Stamper(client, rules, "us", settings=state_settings)
    [stamped] = caught_up.stamp([ahead])
    [same] = behind.stamp([ahead])
    assert isinstance(stamped, Incoming) and isinstance(same, Incoming)
    assert (same.hlc, same.vector) == (stamped.hlc, stamped.vector) == (pack(ahead.timestamp_ms, 0), (("us", 1),))


def test_a_stamped_records_state_hash_is_reused_only_where_both_states_name_keys_alike(
        clients, state_settings, topic) -> None:
    long_key = b"k" * 40
    record = Incoming(topic, long_key, b"v", [], "us", wall_clock_ms(), partition=0, offset=1)
    resolver = Resolver(clients["eu"], rules_for(topic), "eu", settings=state_settings)
    alike = Stamper(clients["us"], rules_for(topic), "us", settings=state_settings).stamp_batch([record])
    assert resolver.decide([record], alike).keys[0] is alike.keys[0]

    hashing = state_settings.model_copy(update={"max_raw_key_bytes": 8})  # this state stores the key hashed
    otherwise = Stamper(clients["us"], rules_for(topic), "us", settings=hashing).stamp_batch([record])
    [own] = resolver.decide([record], otherwise).keys
    assert otherwise.keys[0] != own == resolver.state.state_key(topic, long_key)
