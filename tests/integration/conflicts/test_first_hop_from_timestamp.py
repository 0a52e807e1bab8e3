"""First hops stamped from the record timestamp (`first_hop: timestamp`) on real Redis and Kafka: no key state in the
source, one script call per batch, the same stamp on every link and in every view, and links that stamp differently
for a while (a rule change on its way) still agreeing. That every link refuses or passes a record as the first link
did is tested for both ways of stamping in test_resolver.py."""

import redis
from confluent_kafka import Producer

from amity.clock import MAX_MS, pack, wall_clock_ms
from amity.headers import decode, find_provenance
from amity.resolver import Incoming, Reason, Stamper, Verdict
from amity.rules import ConflictRule, RuleSet
from amity.state import REFUSED
from amity.view import ResolvedView
from tests.integration.conflicts.exchange import CountingRedis, Link
from tests.support.kafka import create_topic, read_all

HOUR_MS = 3_600_000


def from_timestamp(topic: str, policy: str = "lww", **options) -> RuleSet:
    return RuleSet(rules=[ConflictRule(topic=topic, policy=policy, first_hop="timestamp", **options)])


def from_state(topic: str) -> RuleSet:
    return RuleSet(rules=[ConflictRule(topic=topic, policy="lww")])


def write(bootstrap: str, topic: str, records: list[tuple[bytes, bytes | None, int]]) -> None:
    """Plain-client writes with the timestamps given, in order, into partition 0."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for key, value, timestamp_ms in records:
        producer.produce(topic, key=key, value=value, timestamp=timestamp_ms, partition=0)
    assert producer.flush(30) == 0


def resolved(view: ResolvedView) -> dict:
    """key -> (value, version): what regions must agree on (offsets differ from region to region)."""
    return {key: (record.value, record.version) for key, record in view.read(include_deleted=True).items()}


def plain(topic: str, offset: int, timestamp_ms: int, key: bytes = b"k") -> Incoming:
    return Incoming(topic, key, b"v", [], "us", timestamp_ms, partition=0, offset=offset)


def test_every_link_and_view_gives_a_plain_record_its_timestamp_and_the_source_keeps_no_key_state(
        regions, clients, state_settings, topic) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic, partitions=1)
    now = wall_clock_ms()
    write(regions["us"].bootstrap, topic, [(b"k", b"late", now), (b"k", b"early", now - 10), (b"j", b"v", now - 5),
                                           (b"j", None, now - 4), (b"f", b"future", now + HOUR_MS)])
    rules = from_timestamp(topic)
    to_eu = Link(regions["us"], regions["eu"], rules, state_settings)
    to_ap = Link(regions["us"], regions["ap"], rules, state_settings)

    for link in (to_eu, to_ap):
        assert [o.verdict for o in link.replicate(topic)] == [Verdict.APPLY, Verdict.STALE, Verdict.APPLY,
                                                                Verdict.APPLY]
    assert to_eu.stamper.state.memoised(topic, [(0, 4)]) == [REFUSED], "the refusal is memoised, nothing else is"
    copies = {name: [(m.value(), decode(find_provenance(m.headers()))) for m in read_all(regions[name].bootstrap, topic)]
              for name in ("eu", "ap")}
    assert [(v, p.hlc, p.vector) for v, p in copies["eu"]] == [(v, p.hlc, p.vector) for v, p in copies["ap"]] == [
        (b"late", pack(now, 0), (("us", 1),)), (b"v", pack(now - 5, 0), (("us", 1),)),
        (None, pack(now - 4, 0), (("us", 1),))]
    assert not list(clients["us"].scan_iter(match=f"{state_settings.namespace}:v1:s:*".encode())), \
        "no key's state is written in the source"

    rule = rules.rule_for(topic)
    views = [resolved(ResolvedView(regions["us"], topic, rule, state=to_eu.stamper.state)),
             *(resolved(ResolvedView(regions[name], topic, rule)) for name in ("eu", "ap"))]
    assert views[0] == views[1] == views[2]
    assert {k: (value, version.hlc) for k, (value, version) in views[0].items()} == {
        b"k": (b"late", pack(now, 0)), b"j": (None, pack(now - 4, 0))}, "the refused record counts nowhere"


def test_a_batch_of_plain_records_costs_the_source_one_script_call(regions, state_settings, topic) -> None:
    client = CountingRedis.from_url(regions["us"].redis)
    stamper = Stamper(client, from_timestamp(topic), "us", settings=state_settings)
    stamper.state.open()
    now = wall_clock_ms()
    batch = [plain(topic, offset, now, key=f"key-{offset}".encode()) for offset in range(5001)]
    stamper.stamp_batch(batch[:1])  # loads the script once
    client.sent.clear()
    stamped = stamper.stamp_batch(batch[1:])
    assert client.sent == client.one_call_of(stamper.state, "AMITY.FIRSTHOPS")
    assert stamped.hlcs == [pack(now, 0)] * 5000 and set(stamped.dead) == {None} and set(stamped.keys) == {None}


def test_a_batch_passed_again_gets_the_same_stamps_and_a_timestamp_no_stamp_can_carry_stays_dead(
        regions, state_settings, topic) -> None:
    stamper = Stamper(redis.Redis.from_url(regions["us"].redis), from_timestamp(topic), "us", settings=state_settings)
    now = wall_clock_ms()
    batch = [plain(topic, 0, now), plain(topic, 1, MAX_MS + 1), plain(topic, 2, now + 1)]
    first = stamper.stamp_batch(batch)
    again = stamper.stamp_batch(batch)  # redelivered: every record is below the mark now
    for columns in (first, again):
        assert [columns.hlcs[0], columns.hlcs[2]] == [pack(now, 0), pack(now + 1, 0)]
        assert columns.dead[0] is None and columns.dead[2] is None
        assert columns.dead[1].reason is Reason.INVALID_VERSION


def test_links_that_stamp_first_hops_differently_for_a_while_give_each_record_the_first_links_stamp(
        regions, state_settings, topic) -> None:
    """A rule change reaches the links out of a region one after another: whichever stamps a record first decides
    its stamp for the rest."""
    client = redis.Redis.from_url(regions["us"].redis)
    now = wall_clock_ms()
    by_time = Stamper(client, from_timestamp(topic), "us", settings=state_settings)
    by_state = Stamper(client, from_state(topic), "us", settings=state_settings)

    [timed] = by_time.stamp([plain(topic, 0, now)])
    [followed] = by_state.stamp([plain(topic, 0, now)])
    assert (followed.hlc, followed.vector) == (timed.hlc, timed.vector) == (pack(now, 0), (("us", 1),))

    _, from_context = by_state.stamp([plain(topic, 1, now), plain(topic, 2, now)])  # the second sees the first
    [taken] = by_time.stamp([plain(topic, 2, now)])
    assert (taken.hlc, taken.vector) == (from_context.hlc, from_context.vector) == (pack(now, 1), (("us", 2),))


def test_the_timestamp_policy_orders_plain_records_by_its_field_and_breaks_ties_by_the_timestamp(
        regions, state_settings, topic) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic, partitions=1)
    now = wall_clock_ms()
    write(regions["us"].bootstrap, topic, [(b"k", b'{"at": 20}', now - 1), (b"k", b'{"at": 10}', now),
                                           (b"k", b'{"at": 20}', now)])
    rules = from_timestamp(topic, policy="timestamp", field="json:at")
    link = Link(regions["us"], regions["eu"], rules, state_settings)
    assert [o.verdict for o in link.replicate(topic)] == [Verdict.APPLY, Verdict.STALE, Verdict.APPLY]
    rule = rules.rule_for(topic)
    source = resolved(ResolvedView(regions["us"], topic, rule, state=link.stamper.state))
    assert source == resolved(ResolvedView(regions["eu"], topic, rule))
    assert {k: (value, version.hlc) for k, (value, version) in source.items()} == {b"k": (b'{"at": 20}', pack(now, 0))}


def test_writes_of_a_key_in_one_millisecond_rank_equally_and_every_region_keeps_the_first(
        regions, state_settings, topic) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic, partitions=1)
    now = wall_clock_ms()
    write(regions["us"].bootstrap, topic, [(b"k", b"first", now), (b"k", b"second", now), (b"j", b"v", now),
                                           (b"j", None, now)])
    rules = from_timestamp(topic)
    link = Link(regions["us"], regions["eu"], rules, state_settings)
    assert [o.verdict for o in link.replicate(topic)] == [Verdict.APPLY, Verdict.DUPLICATE, Verdict.APPLY,
                                                            Verdict.APPLY]
    rule = rules.rule_for(topic)
    source = resolved(ResolvedView(regions["us"], topic, rule, state=link.stamper.state))
    assert source == resolved(ResolvedView(regions["eu"], topic, rule))
    assert {k: value for k, (value, _) in source.items()} == {b"k": b"first", b"j": None}, \
        "the first of equal ranks, and a delete above a write of the same millisecond"
