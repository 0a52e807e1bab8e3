"""The Redis scripts of amity.state on a real Redis: decisions equal `policies.decide`, stamps serialise.

The apply script is checked against a model that runs `decide` in Python over
the same sequence of versions: random pools of versions (small clocks, few
regions, so ties, duplicates and concurrent vectors are common), delivered in
random batches with repeats and several versions of one key per batch.
"""

import threading
import uuid

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amity import vectors
from amity.clock import pack
from amity.headers import Provenance, decode, encode
from amity.policies import Decision, Version, decide, rank_bytes, rank_template
from amity.rules import ConflictRule
from amity.state import (
    RANKS_ONLY, REBUILDING, Claim, Claims, Hold, Stamp, StampRequest, StateLost, StateSettings, VersionState,
    may_expire, pack_vector, reads_of, unpack_vector,
)
from amity.vectors import Vector, checked, merge

RULES = {
    "lww": ConflictRule(topic="t", policy="lww"),
    "timestamp": ConflictRule(topic="t", policy="timestamp", field="timestamp"),
    "region-priority": ConflictRule(topic="t", policy="region-priority", regions=["eu", "us"]),
    "vector": ConflictRule(topic="t", policy="vector"),
    "vector-by-priority": ConflictRule(topic="t", policy="vector", fallback="region-priority", regions=["eu", "us"]),
}
CODES = {"A": Decision.APPLY, "S": Decision.STALE, "D": Decision.DUPLICATE, "C": Decision.CONFLICT_APPLIED,
         "X": Decision.CONFLICT_STALE}
KEYS = [b"k1", b"k2", b"k3"]
BASE = pack(1_700_000_000_000, 0)

versions = st.builds(
    Version,
    hlc=st.integers(BASE, BASE + 6),
    origin=st.sampled_from(["ap", "eu", "us"]),
    vector=st.dictionaries(st.sampled_from(["ap", "eu", "us"]), st.integers(1, 3), min_size=1).map(checked),
    deleted=st.booleans(),
    field=st.integers(0, 3),
)
histories = st.lists(versions, min_size=1, max_size=8).flatmap(
    lambda pool: st.lists(
        st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(pool)), min_size=1, max_size=12),
        min_size=1, max_size=6,
    )
)


REDIS_EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def fresh_state(client: redis.Redis, state_settings: StateSettings) -> VersionState:
    state = VersionState(client, state_settings)
    state.open()
    return state


def claim(state: VersionState, rule: ConflictRule, state_key: bytes, version: Version) -> Claim:
    """What the apply script needs to decide `version` of the key whose state is at `state_key`."""
    ttl = state.settings.tombstone_ttl_ms if version.deleted and may_expire(rule) else 0
    return Claim(state_key, rank_bytes(rule, version), version.hlc, version.vector, ttl, reads_of(rule))


@pytest.mark.parametrize("policy", sorted(RULES))
def test_the_apply_script_decides_as_decide_and_keeps_the_context_where_a_policy_reads_it(policy, clients,
                                                                                        state_settings) -> None:
    rule = RULES[policy]
    state = fresh_state(clients["us"], state_settings)

    @REDIS_EXAMPLES
    @given(history=histories)
    def check(history: list[list[tuple[bytes, Version]]]) -> None:
        topic = f"t{uuid.uuid4().hex[:8]}"
        held: dict[bytes, Version] = {}
        context: dict[bytes, tuple[Vector, int]] = {}
        for batch in history:
            claims = [claim(state, rule, state.state_key(topic, key), version) for key, version in batch]
            applied = state.apply(claims)
            for position, (key, version) in enumerate(batch):
                expected = decide(rule, held.get(key), version)
                assert CODES[applied.codes[position]] is expected, (key, held.get(key), version)
                if expected.is_conflict:
                    rank, vector = applied.held[position]
                    assert (rank, unpack_vector(vector)) == (rank_bytes(rule, held[key]), held[key].vector)
                if expected.applies:
                    held[key] = version
                vector, top = context.get(key, ((), 0))
                context[key] = (merge(vector, version.vector), max(top, version.hlc))
            assert set(applied.held) == {i for i, code in enumerate(applied.codes) if code in "CX"}
        for key, version in held.items():
            stored = state.read(topic, key)
            assert stored[b"r"] == rank_bytes(rule, version)
            assert unpack_vector(stored[b"v"]) == version.vector
            vector, top = context[key]
            assert int.from_bytes(stored[b"h"], "big") == top
            if reads_of(rule) == RANKS_ONLY:  # no decision reads a vector: claims leave the context alone
                assert b"m" not in stored
            else:
                assert unpack_vector(stored[b"m"]) == vector
            ttl = state.client.pttl(state.state_key(topic, key))
            if version.deleted and may_expire(rule):
                assert 0 < ttl <= state.settings.tombstone_ttl_ms
            else:
                assert ttl == -1

    check()


@pytest.mark.parametrize("policy", sorted(RULES))
def test_a_held_stamp_is_decided_as_apply_would_decide_it(policy, clients, state_settings) -> None:
    rule = RULES[policy]
    state = fresh_state(clients["us"], state_settings)

    @REDIS_EXAMPLES
    @given(held=st.none() | versions, deleted=st.booleans(), field=st.integers(0, 3))
    def check(held: Version | None, deleted: bool, field: int) -> None:
        topic = f"t{uuid.uuid4().hex[:8]}"
        key = state.state_key(topic, b"k")
        if held is not None:
            state.apply([claim(state, rule, key, held)])
        ttl = state.settings.tombstone_ttl_ms if deleted and may_expire(rule) else 0
        hold = Hold(rank_template(rule, "us", deleted, None if deleted else field), ttl)
        [stamp] = state.stamp([StampRequest(key, BASE, hold=hold)], "us")
        mine = Version(stamp.hlc, "us", stamp.vector, deleted, None if deleted else field)
        winner = mine if decide(rule, held, mine).applies else held
        stored = state.read(topic, b"k")
        assert stored[b"r"] == rank_bytes(rule, winner) and unpack_vector(stored[b"v"]) == winner.vector
        assert (unpack_vector(stored[b"m"]), int.from_bytes(stored[b"h"], "big")) == (stamp.vector, stamp.hlc)
        expires = winner.deleted and may_expire(rule)
        assert (state.client.pttl(key) > 0) is expires and (state.client.pttl(key) == -1) is not expires

    check()


def in_source_order(requests: list[tuple]) -> list[tuple]:
    """The requests with their source offsets rearranged to rise, as a link reads a partition (a lower offset after
    a higher one is a record another link passed before, stamped from its timestamp)."""
    offsets = iter(sorted(r[2] for r in requests if r[2] is not None))
    return [r if r[2] is None else (r[0], r[1], next(offsets), *r[3:]) for r in requests]


stamp_requests = st.lists(
    st.tuples(
        st.sampled_from(KEYS),
        st.integers(0, 8),  # floor, above BASE
        st.none() | st.integers(0, 4),  # source offset (put in order): a repeat is answered from its memo
        st.booleans(),  # held (a first hop) or not (amity.Producer)
        st.booleans(),  # a tombstone
        st.integers(0, 3),  # ordering field
    ),
    min_size=1, max_size=12,
).map(in_source_order)


@pytest.mark.parametrize("policy", sorted(RULES))
def test_a_batch_of_stamps_with_repeated_keys_ends_as_one_call_per_stamp_would(policy, clients,
                                                                             state_settings) -> None:
    """The stamp script reads a key's state once per batch and writes it once: the stamps, the held versions and
    their expiry come out as stamping each request in a call of its own."""
    rule = RULES[policy]
    state = fresh_state(clients["us"], state_settings)

    def request(topic: str, key: bytes, floor: int, offset: int | None, holds: bool, deleted: bool,
                field: int) -> StampRequest:
        hold = None
        if holds:
            ttl = state.settings.tombstone_ttl_ms if deleted and may_expire(rule) else 0
            hold = Hold(rank_template(rule, "us", deleted, None if deleted else field), ttl)
        memo = None if offset is None else (topic, 0, offset)
        return StampRequest(state.state_key(topic, key), BASE + floor, memo, hold)

    def expiry(topic: str, key: bytes) -> str:
        ttl = state.client.pttl(state.state_key(topic, key))
        return "expires" if ttl > 0 else {-1: "kept", -2: "absent"}[ttl]

    @REDIS_EXAMPLES
    @given(requests=stamp_requests, held=st.dictionaries(st.sampled_from(KEYS), versions))
    def check(requests, held: dict[bytes, Version]) -> None:
        together, apart = f"t{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
        for topic in (together, apart):
            if held:
                state.apply([claim(state, rule, state.state_key(topic, key), v) for key, v in held.items()])
        batched = state.stamp([request(together, *r) for r in requests], "us")
        one_by_one = [state.stamp([request(apart, *r)], "us")[0] for r in requests]
        assert batched == one_by_one
        for key in KEYS:
            assert state.read(together, key) == state.read(apart, key)
            assert expiry(together, key) == expiry(apart, key)

    check()


def test_stamped_vectors_come_packed_as_a_header_packs_them_memos_included(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    for region in ("zz", "eu", "ap"):
        state.stamp([StampRequest(key, BASE)], region)
    memo = BASE.to_bytes(8, "big") + bytes.fromhex("83a2757301a2657502a2617003")  # us, eu, ap
    # a batch's memos: field 'c' + first offset, [offset, stamp, ...]; 'hi': the highest offset memoised
    chunk = msgpack.packb([7, memo], use_bin_type=False)
    state.client.hset(state.memo_key("t", 0, 7), mapping={"c7": chunk, "hi": 7})
    stamps = state.stamp_batch([StampRequest(key, BASE, ("t", 0, 8)), StampRequest(key, BASE, ("t", 0, 7)),
                                StampRequest(key, BASE, ("t", 0, 8))], "us")
    assert stamps.vectors[0] == pack_vector((("ap", 1), ("eu", 1), ("us", 1), ("zz", 1)))
    assert stamps.vectors[1] == pack_vector((("ap", 3), ("eu", 2), ("us", 1))), "a memo in table order is sorted"
    assert (stamps.hlcs[2], stamps.vectors[2], stamps.fresh) == (stamps.hlcs[0], stamps.vectors[0], [1, 0, 0])


def test_the_scripts_compare_ranks_and_clocks_byte_by_byte(clients, state_settings) -> None:
    """Ranks and clocks of any bytes (high bits set, first difference anywhere) order as Python orders bytes."""
    state = fresh_state(clients["us"], state_settings)
    vector = pack_vector((("us", 1),))

    @REDIS_EXAMPLES
    @given(data=st.data(), size=st.integers(1, 41))
    def check(data, size: int) -> None:
        held, arriving = same_up_to_a_point(data, size)
        held_hlc, arriving_hlc = same_up_to_a_point(data, 8)
        key = state.state_key(f"t{uuid.uuid4().hex[:8]}", b"k")
        columns = Claims()
        columns.add(key, held, held_hlc, vector, 0, RANKS_ONLY)
        columns.add(key, arriving, arriving_hlc, vector, 0, RANKS_ONLY)
        assert state.apply(columns).codes == "A" + ("A" if arriving > held else "S" if arriving < held else "D")
        assert state.client.hget(key, "h") == max(held_hlc, arriving_hlc)

    check()


def same_up_to_a_point(data, size: int) -> tuple[bytes, bytes]:
    """Two byte strings of `size` sharing a drawn prefix: their first difference falls anywhere, past the six
    bytes the scripts read at once too."""
    first = data.draw(st.binary(min_size=size, max_size=size))
    shared = data.draw(st.integers(0, size))
    return first, first[:shared] + data.draw(st.binary(min_size=size - shared, max_size=size - shared))


@pytest.mark.parametrize("top", ["00000000000000fe", "00000000000000ff", "00000000ffffffff", "0001ffffffffffff"])
def test_a_stamp_above_the_context_is_its_successor_carries_included(top, clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    columns = Claims()
    columns.add(key, bytes.fromhex(top) + b"x", bytes.fromhex(top), pack_vector((("eu", 1),)), 0, RANKS_ONLY)
    state.apply(columns)
    [stamp] = state.stamp([StampRequest(key, 0)], "us")
    assert stamp.hlc == int(top, 16) + 1


@pytest.mark.parametrize("seen, region", [("eu", "ap"), ("eu", "zz"), ("ap", "us"), ("us", "ap")])
def test_a_two_region_stamp_comes_packed_as_a_header_packs_it(seen, region, clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    state.stamp([StampRequest(key, BASE)], seen)
    stamps = state.stamp_batch([StampRequest(key, BASE)], region)
    assert stamps.vectors == [pack_vector(tuple(sorted(((seen, 1), (region, 1)))))]


def test_a_key_whose_state_was_written_under_another_policy_is_flagged_not_decided(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    version = Version(BASE, "us", (("us", 1),))
    assert state.apply([claim(state, RULES["lww"], state.state_key("t", b"k"), version)]).codes == "A"
    assert state.apply([claim(state, RULES["region-priority"], state.state_key("t", b"k"), version)]).codes == "L"
    assert state.read("t", b"k")[b"r"] == rank_bytes(RULES["lww"], version)


@pytest.mark.parametrize("policy", ["vector", "region-priority"])
def test_stamps_rise_above_the_floor_and_the_context_and_increment_the_region(policy, clients,
                                                                              state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    remote = Version(BASE + 100, "eu", (("eu", 4), ("us", 1)))
    state.apply([claim(state, RULES[policy], state.state_key("t", b"k"), remote)])
    first, second = state.stamp([StampRequest(key, BASE), StampRequest(key, BASE + 500)], "us")
    assert (first.hlc, first.vector, first.fresh) == (BASE + 101, (("eu", 4), ("us", 2)), True)
    assert (second.hlc, second.vector) == (BASE + 500, (("eu", 4), ("us", 3)))
    stored = state.read("t", b"k")
    assert int.from_bytes(stored[b"h"], "big") == BASE + 500
    assert unpack_vector(stored[b"m"]) == (("eu", 4), ("us", 3))
    assert stored[b"r"] == rank_bytes(RULES[policy], remote), "a stamp alone does not change the held version"


@pytest.mark.parametrize("policy", ["lww", "timestamp"])
def test_under_a_policy_that_reads_no_vector_stamps_rise_above_what_was_seen_and_count_only_the_region(
        policy, clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    remote = Version(BASE + 100, "eu", (("eu", 4), ("us", 1)), field=7)
    state.apply([claim(state, RULES[policy], key, remote)])
    first, second = state.stamp([StampRequest(key, BASE), StampRequest(key, BASE + 500)], "us")
    assert (first.hlc, first.vector) == (BASE + 101, (("us", 1),))
    assert (second.hlc, second.vector) == (BASE + 500, (("us", 2),))


def test_a_source_record_gets_one_stamp_whoever_asks_first(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    link_to_eu = state.stamp([StampRequest(key, BASE, ("t", 0, 41)), StampRequest(key, BASE, ("t", 0, 42))], "us")
    link_to_ap = state.stamp([StampRequest(key, BASE, ("t", 0, 42)), StampRequest(key, BASE, ("t", 0, 41))], "us")
    assert [(s.hlc, s.vector) for s in link_to_ap] == [(s.hlc, s.vector) for s in reversed(link_to_eu)]
    assert [s.fresh for s in link_to_eu + link_to_ap] == [True, True, False, False]
    assert unpack_vector(state.read("t", b"k")[b"m"]) == (("us", 2),), "repeated asks do not count again"
    bucket = state.memo_key("t", 0, 41)
    assert 0 < state.client.pttl(bucket) <= state.settings.stamp_ttl_ms


def test_a_forged_counter_at_the_maximum_saturates_instead_of_poisoning_the_key(clients, state_settings) -> None:
    """A header claimed us made 2**48-1 writes of k; us's next stamps of k stay there, ordered by their clocks,
    and a header can still carry them."""
    state = fresh_state(clients["us"], state_settings)
    forged = Version(BASE, "eu", (("eu", 1), ("us", vectors.MAX_COUNTER)))
    state.apply([claim(state, RULES["vector"], state.state_key("t", b"k"), forged)])
    first, second = state.stamp([StampRequest(state.state_key("t", b"k"), BASE)] * 2, "us")
    assert first.vector == second.vector == (("eu", 1), ("us", vectors.MAX_COUNTER))
    assert BASE < first.hlc < second.hlc
    header = encode(Provenance("us", "t", 0, 0, 1, ("us",), second.hlc, second.vector))
    assert decode(header).vector == second.vector


def test_a_batchs_memos_are_one_field_and_a_link_behind_the_leader_reads_them(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    key = state.state_key("t", b"k")
    leader = state.stamp([StampRequest(key, BASE, ("t", 0, offset)) for offset in (10, 11, 12)], "us")
    assert set(state.client.hkeys(state.memo_key("t", 0, 10))) == {b"c10", b"hi"}
    assert state.client.hget(state.memo_key("t", 0, 10), "hi") == b"12"
    behind = state.stamp([StampRequest(key, BASE, ("t", 0, 11))], "us")
    assert (behind[0].hlc, behind[0].vector, behind[0].fresh) == (leader[1].hlc, leader[1].vector, False)
    assert state.memoised("t", [(0, 12), (0, 13)]) == [Stamp(leader[2].hlc, leader[2].vector, False), None]


def test_concurrent_stampers_of_one_region_never_share_a_stamp(regions, state_settings) -> None:
    threads, rounds, per_round = 4, 10, 5
    stamps: list = []
    lock = threading.Lock()

    def stamper() -> None:
        state = VersionState(redis.Redis.from_url(regions["us"].redis), state_settings)
        key = state.state_key("t", b"k")
        for _ in range(rounds):
            got = state.stamp([StampRequest(key, BASE)] * per_round, "us")
            with lock:
                stamps.extend(got)

    workers = [threading.Thread(target=stamper) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    total = threads * rounds * per_round
    assert len({s.hlc for s in stamps}) == total
    assert sorted(dict(s.vector)["us"] for s in stamps) == list(range(1, total + 1))
    by_clock = sorted(stamps, key=lambda s: s.hlc)
    assert [dict(s.vector)["us"] for s in by_clock] == list(range(1, total + 1)), "later stamps see earlier ones"


def test_a_stamp_keeps_the_expiry_of_a_held_tombstone(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    tombstone = Version(BASE, "eu", (("eu", 1),), deleted=True)
    state.apply([claim(state, RULES["lww"], state.state_key("t", b"k"), tombstone)])
    state.stamp([StampRequest(state.state_key("t", b"k"), BASE)], "us")
    assert state.client.pttl(state.state_key("t", b"k")) > 0


def test_every_script_fails_closed_once_the_epoch_is_gone(clients, state_settings) -> None:
    state = fresh_state(clients["us"], state_settings)
    version = Version(BASE, "us", (("us", 1),))
    state.client.delete(state.epoch_key)
    with pytest.raises(StateLost, match="is missing"):
        state.apply([claim(state, RULES["lww"], state.state_key("t", b"k"), version)])
    with pytest.raises(StateLost):
        state.stamp([StampRequest(state.state_key("t", b"k"), BASE)], "us")
    assert state.read("t", b"k") == {}, "nothing was written"


def test_a_process_starting_during_a_rebuild_does_not_take_the_state_for_fresh(clients, state_settings) -> None:
    rebuilding = fresh_state(clients["us"], state_settings)
    rebuilding.begin_rebuild()
    newcomer = VersionState(clients["us"], state_settings)
    with pytest.raises(StateLost, match="rebuild is running"):
        newcomer.open()
    assert clients["us"].get(rebuilding.epoch_key) == REBUILDING.encode()
    epoch = rebuilding.finish_rebuild()
    assert newcomer.open() == epoch


def test_an_expected_epoch_catches_a_wipe_across_restarts(clients, state_settings) -> None:
    first = fresh_state(clients["us"], state_settings)
    clients["us"].delete(first.epoch_key)
    restarted = VersionState(clients["us"], state_settings, expected_epoch=first.epoch)
    with pytest.raises(StateLost):
        restarted.open()
