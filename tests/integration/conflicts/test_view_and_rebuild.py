"""The resolved view and `amity view` on a real topic; rebuilding a wiped version state from the topics."""

import json
import time

import pytest
import redis
from confluent_kafka import Producer as KafkaProducer
from typer.testing import CliRunner

from amity import Producer, ResolvedView
from amity.cli.main import app
from amity.clock import pack
from amity.headers import PROVENANCE_HEADER, Provenance, encode
from amity.rebuild import rebuild
from amity.resolver import Resolver, Verdict
from amity.rules import ConflictRule, RuleSet
from amity.state import REFUSED, StateLost
from tests.integration.conflicts.conftest import clear_namespace
from tests.integration.conflicts.exchange import Link, incoming
from tests.support.kafka import create_topic, produce, read_all


def rules_for(topic: str, policy: str = "lww") -> RuleSet:
    return RuleSet(rules=[ConflictRule(topic=topic, policy=policy)])


def values(view: dict) -> dict:
    return {key: record.value for key, record in view.items()}


@pytest.fixture
def history(regions, state_settings, topic) -> RuleSet:
    """In us: plain writes first, then stamped writes over them and a delete; a malformed and a keyless record."""
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=2)
    rules = rules_for(topic)
    produce(us.bootstrap, topic, [(b"k1", b"plain"), (b"k3", b"plain-only"), (None, b"keyless")])
    with Producer(us, rules, settings=state_settings) as producer:
        producer.produce_batch(topic, [(b"k1", b"stamped"), (b"k2", b"x"), (b"k2", None)])
    raw = KafkaProducer({"bootstrap.servers": us.bootstrap})
    raw.produce(topic, key=b"k5", value=b"forged", headers=[(PROVENANCE_HEADER, b"\xc1")])
    raw.flush(30)
    return rules


def test_the_view_holds_each_keys_winning_version(regions, history, topic) -> None:
    view = ResolvedView(regions["us"], topic, history.rule_for(topic))
    assert values(view.read()) == {b"k1": b"stamped", b"k3": b"plain-only"}
    everything = view.read(include_deleted=True)
    assert everything[b"k2"].value is None and everything[b"k2"].version.deleted
    assert view.skipped == {"keyless": 1, "MalformedProvenance": 1}


def test_without_a_rule_the_view_is_the_last_record_of_each_key(regions, topic) -> None:
    create_topic(regions["us"].bootstrap, topic)
    produce(regions["us"].bootstrap, topic, [(b"k", b"1"), (b"k", b"2"), (b"j", b"1"), (b"j", None)])
    assert values(ResolvedView(regions["us"], topic, None).read()) == {b"k": b"2"}


def test_amity_view_prints_the_resolved_view_as_json(regions, history, state_settings, topic) -> None:
    result = CliRunner().invoke(app, ["view", topic, "--region", "us", "--bootstrap", regions["us"].bootstrap,
                                      "--redis", regions["us"].redis, "--namespace", state_settings.namespace,
                                      "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert {key: row["value"] for key, row in shown["keys"].items()} == {
        "k1": "stamped", "k3": "plain-only"}
    assert shown["keys"]["k1"]["origin"] == "us" and shown["keys"]["k1"]["vector"] == {"us": 1}
    table = CliRunner().invoke(app, ["view", topic, "--region", "us", "--bootstrap", regions["us"].bootstrap])
    assert table.exit_code == 0 and "plain-only" in table.output


def test_amity_view_names_the_missing_region(tmp_path) -> None:
    regions_file = tmp_path / "regions.json"
    regions_file.write_text(json.dumps({"us": {"bootstrap": "127.0.0.1:1", "redis": "redis://127.0.0.1:1/0"}}))
    result = CliRunner().invoke(app, ["view", "t", "--region", "mars", "--regions-file", str(regions_file)])
    assert result.exit_code == 1 and "'mars' is not in" in result.output


def test_a_plain_write_ranks_by_its_first_hop_stamp_in_its_own_region_too(regions, state_settings, topic) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic)
    rules = rules_for(topic)
    produce(us.bootstrap, topic, [(b"k", b"plain in us")])
    with Producer(eu, rules, settings=state_settings) as producer:
        producer.produce(topic, b"k", b"stamped in eu, later")
    Link(eu, us, rules, state_settings).replicate(topic)  # us applies eu's write before any link read its own
    Link(us, eu, rules, state_settings).replicate(topic)  # its first hop stamps it past what us holds
    state = {name: Resolver(redis.Redis.from_url(r.redis), rules, name, settings=state_settings).state
             for name, r in (("us", us), ("eu", eu))}
    views = {name: values(ResolvedView(regions[name], topic, rules.rule_for(topic), state=state[name]).read())
             for name in ("us", "eu")}
    assert views["us"] == views["eu"] == {b"k": b"plain in us"}
    by_timestamp = values(ResolvedView(us, topic, rules.rule_for(topic)).read())
    assert by_timestamp == {b"k": b"stamped in eu, later"}, "without the stamp, us would rank it by its timestamp"


def test_a_plain_write_its_first_hop_refused_counts_in_no_region(regions, state_settings, topic) -> None:
    """Ten minutes ahead of the clock (the rule allows one), the second write is dead-lettered at its first hop.
    Ranked by its timestamp, us's view would have it; with the memoised refusal, us skips it as eu never had it."""
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic)
    rules = rules_for(topic)
    plain = KafkaProducer({"bootstrap.servers": us.bootstrap})
    plain.produce(topic, key=b"k", value=b"on time", partition=0)
    plain.produce(topic, key=b"k", value=b"ten minutes ahead", partition=0, timestamp=int(time.time() * 1000) + 600_000)
    assert plain.flush(10) == 0
    link = Link(us, eu, rules, state_settings)
    assert [o.verdict for o in link.replicate(topic)] == [Verdict.APPLY], "the write ahead never reaches eu"
    assert link.stamper.state.memoised(topic, [(0, 1)]) == [REFUSED]
    state = Resolver(redis.Redis.from_url(us.redis), rules, "us", settings=state_settings).state
    view = ResolvedView(us, topic, rules.rule_for(topic), state=state)
    assert values(view.read()) == values(ResolvedView(eu, topic, rules.rule_for(topic)).read()) == {b"k": b"on time"}
    assert view.skipped["RefusedAtFirstHop"] == 1


def test_a_wiped_state_fails_closed_and_a_rebuild_refuses_stale_versions_again(
        regions, clients, state_settings, topic) -> None:
    us, eu = regions["us"], regions["eu"]
    for region in (us, eu):
        create_topic(region.bootstrap, topic)
    rules = rules_for(topic)
    with Producer(us, rules, settings=state_settings) as producer:
        producer.produce_batch(topic, [(b"k", b"v1"), (b"k", b"v2"), (b"j", b"j1"), (b"j", None)])
    Link(us, eu, rules, state_settings).replicate(topic)
    k_v1, k_v2, j_j1, _ = (incoming(msg, "us") for msg in read_all(us.bootstrap, topic))
    resolver = Resolver(redis.Redis.from_url(eu.redis), rules, "eu", settings=state_settings)
    assert [o.verdict for o in resolver.resolve([k_v1, j_j1])] == [Verdict.STALE, Verdict.STALE]

    assert clear_namespace(clients["eu"], state_settings.namespace) > 0  # the Redis of eu is lost
    with pytest.raises(StateLost):
        resolver.resolve([k_v1])

    report = rebuild(eu, [topic], rules, settings=state_settings)
    assert (report.records, report.claims) == (4, 4)
    assert resolver.resume() == report.epoch
    assert [o.verdict for o in resolver.resolve([k_v1, j_j1, k_v2])] == [
        Verdict.STALE, Verdict.STALE, Verdict.DUPLICATE]
    assert clients["eu"].pttl(resolver.state.state_key(topic, b"j")) > 0, "the tombstone's state expires"
    assert clients["eu"].pttl(resolver.state.state_key(topic, b"k")) == -1, "a live key's state never does"


def test_a_rebuild_never_appends_a_plain_record_again(regions, clients, state_settings, topic) -> None:
    """A repair appends a copy with the original's headers: a plain record's copy would have none, and its next
    first hop would stamp it as a new write, above every later version. So plain records are not landed."""
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    rules = rules_for(topic)
    raw = KafkaProducer({"bootstrap.servers": us.bootstrap})
    raw.produce(topic, key=b"k", value=b"plain, a minute ahead", timestamp=int(time.time() * 1000) + 60_000)
    raw.flush(30)
    with Producer(us, rules, settings=state_settings) as producer:
        producer.produce(topic, b"k", b"stamped now, below it")
    clear_namespace(clients["us"], state_settings.namespace)
    report = rebuild(us, [topic], rules, settings=state_settings)
    assert (report.claims, report.repaired) == (2, 0)
    assert [msg.value() for msg in read_all(us.bootstrap, topic)] == [b"plain, a minute ahead",
                                                                      b"stamped now, below it"]


def test_the_view_skips_a_version_its_policy_cannot_rank(regions, state_settings, topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic)
    rules = RuleSet(rules=[ConflictRule(topic=topic, policy="region-priority", regions=["us", "eu"])])
    without_vector = Provenance(origin="us", topic=topic, partition=0, offset=0, timestamp_ms=1, path=("us",),
                                hlc=pack(int(time.time() * 1000), 0), vector=None)
    raw = KafkaProducer({"bootstrap.servers": us.bootstrap})
    raw.produce(topic, key=b"k", value=b"no vector", headers=[(PROVENANCE_HEADER, encode(without_vector))])
    raw.flush(30)
    with Producer(us, rules, settings=state_settings) as producer:
        producer.produce(topic, b"k", b"stamped")
    view = ResolvedView(us, topic, rules.rule_for(topic))
    assert values(view.read()) == {b"k": b"stamped"}
    assert view.skipped == {"MissingOrderingField": 1}
