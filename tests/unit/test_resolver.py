"""The resolver's pure parts: state layout, held-version decoding, triage into PASS and DEAD, the skew guard.

Nothing here reaches a server: the Redis clients are never connected, and the
batches are chosen so that no claim or stamp reaches Redis. The Redis scripts
themselves are checked against `policies.decide` in tests/integration/conflicts.
"""

import json

import msgpack
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from amity.clock import ClockSkewError, TimestampRangeError, pack
from amity.headers import PROVENANCE_HEADER, MalformedProvenance, Provenance, encode
from amity.ordering import MissingOrderingField
from amity.policies import Version, rank, rank_bytes
from amity.mirror.resolution import conflict_headers, described
from amity.resolver import (
    Held, Incoming, Outcome, Reason, Resolver, SkewGuard, Stamper, Verdict, passing, version_of,
)
from amity.rules import ConflictRule, RuleSet
from amity.state import (
    CONCURRENCY, RANKS_ONLY, Claim, Claims, Stamp, StateError, StateSettings, VersionState, held_version, may_expire,
    pack_vector, unpack_vector,
)
from amity.stored import own_provenance, stored_version
from amity.vectors import checked

LWW = ConflictRule(topic="t", policy="lww")
TIMESTAMP = ConflictRule(topic="t", policy="timestamp", field="json:at")
PRIORITY = ConflictRule(topic="t", policy="region-priority", regions=["eu", "us"])
VECTOR = ConflictRule(topic="t", policy="vector")
VECTOR_BY_PRIORITY = ConflictRule(topic="t", policy="vector", fallback="region-priority", regions=["eu", "us"])
ORDERED = [LWW, TIMESTAMP, PRIORITY, VECTOR, VECTOR_BY_PRIORITY]
NOW_MS = 1_700_000_000_000


def offline_client() -> redis.Redis:
    """A client that is never used to connect: every test here must decide without Redis."""
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.01)


def state(**settings: object) -> VersionState:
    return VersionState(offline_client(), StateSettings(**settings))


def incoming(key: bytes | None = b"k", value: bytes | None = b"{}", topic: str = "t", hlc: int | None = None,
             origin: str = "us", vector=(("us", 1),), timestamp_ms: int = NOW_MS) -> Incoming:
    return Incoming(topic, key, value, [], origin, timestamp_ms, hlc, vector if hlc is not None else None, 0, 7)


versions = st.builds(
    Version,
    hlc=st.integers(0, (1 << 64) - 1),
    origin=st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True),
    vector=st.dictionaries(st.sampled_from(["ap", "eu", "us"]), st.integers(1, 1 << 40), min_size=1).map(checked),
    deleted=st.booleans(),
    field=st.integers(0, (1 << 63) - 1),
)


# state layout


@given(rule=st.sampled_from(ORDERED), version=versions)
def test_the_held_version_decoded_from_its_rank_bytes_ranks_the_same(rule: ConflictRule, version: Version) -> None:
    held = held_version(rule, rank_bytes(rule, version), version.vector)
    assert rank(rule, held) == rank(rule, version)
    assert (held.hlc, held.origin, held.deleted, held.vector) == (version.hlc, version.origin, version.deleted,
                                                                  version.vector)


@given(rule=st.sampled_from([VECTOR, VECTOR_BY_PRIORITY]), version=versions)
def test_a_conflict_names_the_held_version_and_its_header_describes_it_in_msgpack(rule: ConflictRule,
                                                                                  version: Version) -> None:
    conflict = Held(rule, rank_bytes(rule, version), pack_vector(version.vector))
    outcome = Outcome(Verdict.CONFLICT_STALE, conflict=conflict)
    assert outcome.held == held_version(rule, rank_bytes(rule, version), version.vector)
    assert msgpack.unpackb(described(conflict)) == [version.hlc, version.origin, dict(version.vector),
                                                    version.deleted]
    headers = conflict_headers([("a", b"1")], outcome)
    assert headers == [("a", b"1"), ("amity-conflict-verdict", b"conflict-stale"),
                       ("amity-conflict-held", described(conflict))]


@given(vector=st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), st.integers(1, (1 << 48) - 1),
                              max_size=64))
def test_vectors_round_trip_through_the_stored_form(vector: dict[str, int]) -> None:
    canonical = checked(vector)
    assert unpack_vector(pack_vector(canonical)) == canonical


@given(vector=st.dictionaries(st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True), st.integers(1, (1 << 48) - 1),
                              max_size=64))
def test_a_stored_vector_is_packed_as_in_a_provenance_header(vector: dict[str, int]) -> None:
    canonical = checked(vector)
    assert pack_vector(canonical) == msgpack.packb(dict(canonical))


def test_claims_go_to_the_script_column_by_column_with_hlc_and_vector_packed() -> None:
    claims = Claims.of([Claim(b"k1", b"r1", 5, (("us", 1),), 0, RANKS_ONLY),
                        Claim(b"k2", b"r2", 6, (), 9, CONCURRENCY)])
    assert len(claims) == 2
    assert claims.fields == [b"k1", b"r1", (5).to_bytes(8, "big"), 0, RANKS_ONLY, pack_vector((("us", 1),)),
                             b"k2", b"r2", (6).to_bytes(8, "big"), 9, CONCURRENCY, pack_vector(())]


def test_an_empty_vector_as_the_scripts_pack_it_reads_back_empty() -> None:
    assert unpack_vector(b"\x90") == ()
    assert unpack_vector(None) == ()


@given(pairs=st.lists(st.tuples(st.sampled_from(["t", "t.a", "t-b", "u"]), st.binary(max_size=200)), min_size=2,
                      max_size=20, unique=True))
def test_distinct_topic_and_key_pairs_have_distinct_state_keys(pairs: list[tuple[str, bytes]]) -> None:
    layout = state(max_raw_key_bytes=16)
    assert len({layout.state_key(topic, key) for topic, key in pairs}) == len(pairs)


def test_long_keys_are_stored_under_a_fixed_size_hash() -> None:
    layout = state(namespace="ns", max_raw_key_bytes=4)
    assert layout.state_key("t", b"abcd") == b"ns:v1:s:t:=abcd"
    long_key = layout.state_key("t", b"x" * 10_000)
    assert long_key.startswith(b"ns:v1:s:t:#") and len(long_key) == len(b"ns:v1:s:t:#") + 20


def test_namespaces_keep_their_keys_apart() -> None:
    assert state(namespace="a").state_key("t", b"k") != state(namespace="b").state_key("t", b"k")
    assert state(namespace="a").epoch_key != state(namespace="b").epoch_key


def test_source_records_share_a_memo_bucket_per_range_of_offsets() -> None:
    layout = state(namespace="ns")
    assert layout.memo_key("t", 3, 5) == b"ns:v1:m:t:3:0"
    assert layout.memo_key("t", 3, 4096) == b"ns:v1:m:t:3:1"


@pytest.mark.parametrize("namespace", ["", "a b", "a:b", "x" * 65])
def test_a_namespace_that_could_collide_is_refused(namespace: str) -> None:
    with pytest.raises(ValidationError):
        StateSettings(namespace=namespace)


def test_a_client_decoding_responses_is_refused() -> None:
    with pytest.raises(StateError, match="decode_responses"):
        VersionState(redis.Redis(port=1, decode_responses=True))


def test_tombstone_state_expires_only_under_clock_ranked_policies() -> None:
    assert [may_expire(rule) for rule in ORDERED] == [True, True, False, True, False]


# triage


def test_records_without_a_resolving_rule_or_key_pass() -> None:
    rules = RuleSet(rules=[LWW, ConflictRule(topic="audit", policy="none")])
    assert passing(rules.rule_for("other"), b"k").reason is Reason.NO_RULE
    assert passing(rules.rule_for("audit"), b"k").reason is Reason.POLICY_NONE
    assert passing(rules.rule_for("t"), None).reason is Reason.KEYLESS
    assert passing(rules.rule_for("t"), b"k") is None


class Consumed:
    """A consumed record, as the router holds it."""

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 2

    def offset(self) -> int:
        return 40

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"v"

    def headers(self) -> list:
        return [("h", b"1")]

    def timestamp(self) -> tuple[int, int]:
        return (1, -1)


def test_a_first_hop_record_is_unstamped_and_keeps_its_coordinates_in_the_origin() -> None:
    record = Incoming.first_hop(Consumed(), "us")
    assert record == Incoming("t", b"k", b"v", [("h", b"1")], "us", 0, None, None, 2, 40)


def test_a_mirrored_record_takes_its_version_from_the_provenance() -> None:
    provenance = Provenance("us", "t", 1, 9, NOW_MS, ("us", "eu"), pack(NOW_MS, 1), (("us", 2),))
    record = Incoming.of(Consumed(), provenance)
    assert (record.origin, record.hlc, record.vector, record.timestamp_ms) == ("us", pack(NOW_MS, 1), (("us", 2),),
                                                                               NOW_MS)


def test_a_tombstone_claims_a_deleted_version_without_an_ordering_field() -> None:
    record = incoming(value=None, hlc=pack(NOW_MS, 3))
    assert version_of(TIMESTAMP, record, pack(NOW_MS, 3)) == Version(pack(NOW_MS, 3), "us", (("us", 1),), True, None)


def test_the_timestamp_policy_reads_the_ordering_field_of_a_write() -> None:
    record = incoming(value=json.dumps({"at": 1234}).encode(), hlc=pack(NOW_MS, 0))
    assert version_of(TIMESTAMP, record, pack(NOW_MS, 0)).field == 1234
    with pytest.raises(MissingOrderingField):
        version_of(TIMESTAMP, incoming(value=b"{}", hlc=pack(NOW_MS, 0)), pack(NOW_MS, 0))


def test_the_skew_guard_accepts_up_to_the_rules_bound_and_refuses_beyond() -> None:
    guard = SkewGuard(lambda: NOW_MS)
    rule = ConflictRule(topic="t", max_skew_ms=1000)
    guard.check(rule, pack(NOW_MS + 1000, 65535))
    with pytest.raises(ClockSkewError) as caught:
        guard.check(rule, pack(NOW_MS + 1001, 0))
    assert caught.value.skew_ms == 1001


def test_the_skew_guard_refuses_from_the_first_timestamp_check_refuses() -> None:
    guard = SkewGuard(lambda: NOW_MS)
    rule = ConflictRule(topic="t", max_skew_ms=1000)
    assert guard.refused_from(rule) == pack(NOW_MS + 1001, 0)
    guard.check(rule, guard.refused_from(rule) - 1)
    with pytest.raises(ClockSkewError):
        guard.check(rule, guard.refused_from(rule))


def test_the_skew_guard_reads_the_wall_clock_once_per_batch() -> None:
    wall = [NOW_MS]
    guard = SkewGuard(lambda: wall[0])
    wall[0] += 10_000
    with pytest.raises(ClockSkewError):
        guard.check(ConflictRule(topic="t", max_skew_ms=1), pack(NOW_MS + 5_000, 0))
    guard.start_batch()
    guard.check(ConflictRule(topic="t", max_skew_ms=1), pack(NOW_MS + 5_000, 0))


def test_records_that_cannot_be_ordered_go_dead_and_the_rest_pass_without_touching_redis() -> None:
    rules = RuleSet(rules=[TIMESTAMP, ConflictRule(topic="p", policy="region-priority", regions=["us"]),
                           ConflictRule(topic="a", policy="none")])
    resolver = Resolver(offline_client(), rules, "eu", now_ms=lambda: NOW_MS)
    batch = [
        incoming(hlc=None),  # never stamped
        incoming(hlc=pack(NOW_MS + 61_000, 0), value=b'{"at": 1}'),  # beyond the default 60 s skew
        incoming(hlc=pack(NOW_MS, 0), value=b"not json"),
        incoming(topic="p", hlc=pack(NOW_MS, 0), vector=()),  # region-priority orders by the vector
        incoming(key=None, hlc=pack(NOW_MS, 0)),
        incoming(topic="a", hlc=pack(NOW_MS, 0)),
        incoming(topic="x", hlc=pack(NOW_MS, 0)),
    ]
    outcomes = resolver.resolve(batch)
    assert [(o.verdict, o.reason) for o in outcomes] == [
        (Verdict.DEAD, Reason.UNSTAMPED),
        (Verdict.DEAD, Reason.CLOCK_SKEW),
        (Verdict.DEAD, Reason.MISSING_ORDERING_FIELD),
        (Verdict.DEAD, Reason.MISSING_ORDERING_FIELD),
        (Verdict.PASS, Reason.KEYLESS),
        (Verdict.PASS, Reason.POLICY_NONE),
        (Verdict.PASS, Reason.NO_RULE),
    ]
    assert "61000 ms ahead" in outcomes[1].detail


def test_a_decided_batch_names_no_state_or_rank_for_records_not_decided_in_redis() -> None:
    resolver = Resolver(offline_client(), RuleSet(rules=[LWW]), "eu", now_ms=lambda: NOW_MS)
    batch = [incoming(hlc=None), incoming(key=None, hlc=pack(NOW_MS, 0)), incoming(topic="x", hlc=pack(NOW_MS, 1))]
    decided = resolver.decide(batch)
    assert [o.verdict for o in decided.outcomes] == [Verdict.DEAD, Verdict.PASS, Verdict.PASS]
    assert decided.keys == decided.ranks == [None, None, None]
    assert decided.hlcs == [None, pack(NOW_MS, 0), pack(NOW_MS, 1)]


@pytest.mark.parametrize(("verdict", "writes"), [
    (Verdict.APPLY, True), (Verdict.DUPLICATE, True), (Verdict.CONFLICT_APPLIED, True), (Verdict.PASS, True),
    (Verdict.STALE, False), (Verdict.CONFLICT_STALE, False), (Verdict.DEAD, False),
])
def test_an_outcome_writes_the_record_when_it_is_or_stays_the_held_version(verdict: Verdict, writes: bool) -> None:
    assert Outcome(verdict).writes is writes
    assert Outcome(verdict).is_conflict is (verdict in (Verdict.CONFLICT_APPLIED, Verdict.CONFLICT_STALE))


def test_the_stamper_leaves_alone_what_is_stamped_elsewhere_or_not_resolved() -> None:
    """Without a call to Redis (the client is offline); a refusal for clock skew is memoised there, see
    tests/integration/conflicts/test_resolver.py."""
    stamper = Stamper(offline_client(), RuleSet(rules=[LWW]), "us", now_ms=lambda: NOW_MS)
    stamped = incoming(hlc=pack(NOW_MS, 0))
    mirrored = incoming(hlc=None, origin="eu")
    keyless = incoming(key=None)
    other_topic = incoming(topic="x")
    assert stamper.stamp([stamped, mirrored, keyless, other_topic]) == [stamped, mirrored, keyless, other_topic]
    columns = stamper.stamp_batch([stamped, mirrored])
    assert columns.hlcs == [pack(NOW_MS, 0), None] and columns.vectors == [None, None]
    assert columns.dead == [None, None]


# stored versions


class Stored:
    """A record as read back from a topic."""

    def __init__(self, value: bytes | None, headers=None, timestamp_ms: int = NOW_MS, topic: str = "t") -> None:
        self._value, self._headers, self._timestamp, self._topic = value, headers, timestamp_ms, topic

    def topic(self) -> str:
        return self._topic

    def value(self) -> bytes | None:
        return self._value

    def headers(self):
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)


def test_a_plain_clients_record_counts_as_a_write_of_the_region_stamped_from_its_timestamp() -> None:
    assert stored_version(LWW, "eu", Stored(b"v")) == Version(pack(NOW_MS, 0), "eu", (("eu", 1),), False, None)
    assert stored_version(LWW, "eu", Stored(None)).deleted


def test_a_plain_clients_record_with_a_remembered_first_hop_stamp_claims_that_stamp() -> None:
    stamp = Stamp(pack(NOW_MS, 7), (("eu", 3), ("us", 1)), False)
    assert stored_version(LWW, "eu", Stored(b"v"), stamp) == Version(pack(NOW_MS, 7), "eu", stamp.vector, False, None)


def test_a_stamped_record_claims_the_version_in_its_header() -> None:
    provenance = Provenance("us", "t", 0, 0, NOW_MS, ("us", "eu"), pack(NOW_MS, 9), (("eu", 2), ("us", 3)))
    found = stored_version(LWW, "eu", Stored(b"v", [("x", b"1"), (PROVENANCE_HEADER, encode(provenance))]))
    assert found == Version(pack(NOW_MS, 9), "us", (("eu", 2), ("us", 3)), False, None)


def test_a_header_copied_from_another_topics_record_claims_nothing() -> None:
    provenance = Provenance("us", "orders", 0, 0, NOW_MS, ("us", "eu"), pack(NOW_MS, 9), (("us", 3),))
    copied = Stored(b"v", [(PROVENANCE_HEADER, encode(provenance))], topic="orders-enriched")
    assert own_provenance(copied) is None
    assert stored_version(LWW, "eu", copied) == Version(pack(NOW_MS, 0), "eu", (("eu", 1),), False, None)
    assert own_provenance(Stored(b"v", [(PROVENANCE_HEADER, encode(provenance))], topic="eu.orders")) == provenance


def test_a_stored_record_without_a_usable_version_raises() -> None:
    with pytest.raises(MalformedProvenance):
        stored_version(LWW, "eu", Stored(b"v", [(PROVENANCE_HEADER, b"\xc1")]))
    with pytest.raises(TimestampRangeError):
        stored_version(LWW, "eu", Stored(b"v", timestamp_ms=-1))
