"""Landings on real Kafka and Redis: a key's last record ends as its winning version, whatever order writers'
records and landings come in (amity.tails)."""

import io
import logging
import time

import msgpack
import pytest
from confluent_kafka import Producer as KafkaProducer

from amity import Producer
from amity.clock import pack
from amity.headers import PROVENANCE_HEADER, Provenance, encode
from amity.policies import Version, rank_bytes
from amity.rebuild import rebuild
from amity.rules import ConflictRule, RuleSet
from amity.state import RANKS_ONLY, Claim, VersionState
from amity.tails import ANY_PARTITION, LEASE_MS, Landing, TailState, Tails
from tests.support.kafka import create_topic, produce, read_all

KEY = b"k"


@pytest.fixture
def us(regions):
    return regions["us"]


@pytest.fixture
def state(clients, state_settings) -> VersionState:
    return VersionState(clients["us"], state_settings)


def rank(topic: str, hlc: int) -> bytes:
    return rank_bytes(ConflictRule(topic=topic, policy="lww"), Version(hlc, "us"))


def hold(state: VersionState, topic: str, hlc: int) -> bytes:
    """Make the version of clock `hlc` the held version of KEY, as a resolver would; its rank."""
    held = rank(topic, hlc)
    assert state.apply([Claim(state.state_key(topic, KEY), held, hlc, (), 0, RANKS_ONLY)]).codes == "A"
    return held


def written(us, topic: str, values: list[bytes]) -> list[Landing]:
    """Write `values` to KEY in a one-partition topic, in order; where each sits (its rank to be filled in)."""
    create_topic(us.bootstrap, topic)
    produce(us.bootstrap, topic, [(KEY, value) for value in values])
    return [Landing(b"", b"", KEY, topic, 0, msg.offset()) for msg in read_all(us.bootstrap, topic)]


def landing(state: VersionState, record: Landing, rank_of: bytes) -> Landing:
    return Landing(state.state_key(record.topic, KEY), rank_of, KEY, record.topic, record.partition, record.offset)


def last_value(us, topic: str) -> bytes:
    return [msg.value() for msg in read_all(us.bootstrap, topic) if msg.key() == KEY][-1]


def racing_tails(us, clients, topic: str) -> Tails:
    """A writer of partition 0 of `topic`, and another one registered there: the two can race."""
    tails = Tails(us, clients["us"])
    tails.register([(topic, 0)])
    tails.state.register("another-writer", [(topic, 0)])
    return tails


@pytest.mark.parametrize("order", ["winner-first", "loser-first"])
def test_a_losing_version_that_landed_after_the_winner_is_followed_by_the_winner_again(us, clients, state, topic,
                                                                                       order) -> None:
    winner_at, loser_at = written(us, topic, [b"winner", b"loser"])
    held = hold(state, topic, 200)
    landings = [landing(state, winner_at, held), landing(state, loser_at, rank(topic, 100))]
    if order == "loser-first":
        landings.reverse()
    tails = racing_tails(us, clients, topic)
    try:
        assert tails.land(landings) == 1
    finally:
        tails.close()
    assert last_value(us, topic) == b"winner"
    stored = state.read(topic, KEY)
    _, tail_offset, _, copy_offset, copy_rank = msgpack.Unpacker(io.BytesIO(stored[b"l"]), raw=True)
    assert (tail_offset, copy_offset, copy_rank) == (2, 2, held), "the copy is the tail and the winner"
    registered = clients["us"].hkeys(tails.state.prefix + topic)
    assert f"0|{tails.writer}-repair".encode() in registered, "the repair wrote as a writer of its own"


def test_landings_in_log_order_under_the_winner_need_no_repair(us, clients, state, topic) -> None:
    loser_at, winner_at = written(us, topic, [b"loser", b"winner"])
    held = hold(state, topic, 200)
    tails = TailState(clients["us"])
    assert tails.land([landing(state, loser_at, rank(topic, 100)), landing(state, winner_at, held)]) == []
    assert len(read_all(us.bootstrap, topic)) == 2


def test_a_key_with_no_held_version_records_no_landing(us, clients, state, topic) -> None:
    tails = TailState(clients["us"])
    assert tails.land([Landing(state.state_key(topic, KEY), rank(topic, 1), KEY, topic, 0, 5)]) == []
    assert state.read(topic, KEY) == {}


def test_a_winner_no_longer_in_the_log_is_not_replaced_by_another_record(us, clients, state, topic, caplog) -> None:
    """Compaction may have removed the winner's copy: what sits at its offset now belongs to another key."""
    create_topic(us.bootstrap, topic)
    produce(us.bootstrap, topic, [(b"another-key", b"x"), (KEY, b"loser")])
    held = hold(state, topic, 200)
    state_key = state.state_key(topic, KEY)
    tails = racing_tails(us, clients, topic)
    try:
        with caplog.at_level(logging.WARNING, logger="amity.tails"):
            appended = tails.land([Landing(state_key, held, KEY, topic, 0, 0),
                                   Landing(state_key, rank(topic, 100), KEY, topic, 0, 1)])
    finally:
        tails.close()
    assert appended == 0
    assert "no longer at offset 0" in caplog.text
    assert len(read_all(us.bootstrap, topic)) == 2


def test_a_writer_alone_on_its_partitions_leaves_the_keys_untouched(us, clients, state, topic) -> None:
    """Its records land in the order it decided them: nothing to record, whatever a writer of another partition
    or an expired one does."""
    loser_at, winner_at = written(us, topic, [b"loser", b"winner"])
    held = hold(state, topic, 200)
    tails = Tails(us, clients["us"])
    tails.register([(topic, 0)])
    tails.state.register("writer-of-partition-1", [(topic, 1)])
    tails.state.register("stopped-writer", [(topic, 0)], lease_ms=1)
    time.sleep(0.01)
    try:
        assert tails.land([landing(state, loser_at, rank(topic, 100)), landing(state, winner_at, held)]) == 0
        assert tails.state.touched == 0
        assert b"l" not in state.read(topic, KEY)
        assert f"0|{tails.writer}".encode() in clients["us"].hkeys(tails.state.prefix + topic)
    finally:
        tails.close()
    assert b"0|stopped-writer" in clients["us"].hkeys(tails.state.prefix + topic), "a landing deletes nothing"
    assert b"1|writer-of-partition-1" in clients["us"].hkeys(tails.state.prefix + topic)
    assert f"0|{tails.writer}".encode() not in clients["us"].hkeys(tails.state.prefix + topic), (
        "closing ends the writer's own registrations")


def test_a_released_writer_leaves_its_partitions_and_registers_again_before_its_next_write(us, clients,
                                                                                             topic) -> None:
    """Released (its partitions revoked, its records landed), it is no other writer's other writer; writing again,
    it is registered again."""
    tails = Tails(us, clients["us"])

    def registered() -> list[bytes]:
        return clients["us"].hkeys(tails.state.prefix + topic)

    try:
        tails.register([(topic, 0), (topic, ANY_PARTITION)])
        assert {f"0|{tails.writer}".encode(), f"*|{tails.writer}".encode()} <= set(registered())
        tails.release()
        assert not any(entry.endswith(tails.writer.encode()) for entry in registered())
        tails.register([(topic, 1)])
        assert [entry for entry in registered() if entry.endswith(tails.writer.encode())] == [
            f"1|{tails.writer}".encode()]
    finally:
        tails.close()


def test_after_a_rebuild_every_landing_counts_for_a_lease(us, clients, state, topic) -> None:
    """The wipe before a rebuild took the registrations of writers whose records may still be landing."""
    winner_at, = written(us, topic, [b"winner"])
    held = hold(state, topic, 200)
    tails = TailState(clients["us"])
    tails.register("a-writer", [(topic, 0)])
    tails.mark_rebuilt()
    assert 0 < clients["us"].pttl(tails.rebuilt_marker) <= LEASE_MS
    tails.land([landing(state, winner_at, held)], "a-writer")
    assert tails.touched == 1


def test_a_registration_drops_the_registrations_that_ran_out(clients, topic) -> None:
    tails = TailState(clients["us"])
    tails.register("live-writer", [(topic, 1)])
    tails.register("stopped-writer", [(topic, 0)], lease_ms=1)
    time.sleep(0.01)
    tails.register("new-writer", [(topic, 0)])
    assert sorted(clients["us"].hkeys(tails.prefix + topic)) == [b"0|new-writer", b"1|live-writer"]
    assert clients["us"].pttl(tails.prefix + topic) > 1000, "a short lease never shortens the registry's life"


@pytest.mark.parametrize("partition", [0, ANY_PARTITION])
def test_another_writer_of_the_partition_or_of_any_makes_every_landing_count(us, clients, state, topic,
                                                                              partition) -> None:
    loser_at, winner_at = written(us, topic, [b"loser", b"winner"])
    held = hold(state, topic, 200)
    tails = Tails(us, clients["us"])
    tails.register([(topic, 0)])
    tails.state.register("another-writer", [(topic, partition)])
    try:
        assert tails.land([landing(state, loser_at, rank(topic, 100)), landing(state, winner_at, held)]) == 0
    finally:
        tails.close()
    assert tails.state.touched == 2
    _, tail_offset, _, copy_offset, copy_rank = msgpack.Unpacker(io.BytesIO(state.read(topic, KEY)[b"l"]), raw=True)
    assert (tail_offset, copy_offset, copy_rank) == (1, 1, held)


def test_two_producers_racing_on_a_key_leave_the_newer_write_last(us, clients, state_settings, topic) -> None:
    """The older write is held back in its producer's queue until after the newer one is acknowledged."""
    create_topic(us.bootstrap, topic)
    rules = RuleSet(rules=[ConflictRule(topic=topic, policy="lww")])
    slow = Producer(us, rules, {"linger.ms": 60_000}, client=clients["us"], settings=state_settings)
    fast = Producer(us, rules, client=clients["us"], settings=state_settings)
    slow.produce(topic, KEY, b"older")
    fast.produce(topic, KEY, b"newer")
    assert fast.flush(30) == 0
    assert slow.flush(30) == 0
    fast.tails.close()
    slow.tails.close()
    assert [msg.value() for msg in read_all(us.bootstrap, topic)] == [b"newer", b"older", b"newer"]
    assert slow.tails.repaired == 1


def test_a_rebuild_lands_the_log_and_repairs_a_losing_last_record(us, clients, state_settings, topic) -> None:
    """A state lost right after a race: the rebuilt state finds the loser last and appends the winner again."""
    create_topic(us.bootstrap, topic)
    producer = KafkaProducer({"bootstrap.servers": us.bootstrap, "enable.idempotence": True})
    for value, hlc in ((b"winner", pack(2_000, 0)), (b"loser", pack(1_000, 0))):
        provenance = Provenance("us", topic, 0, 0, 1, ("us",), hlc, (("us", 1),))
        producer.produce(topic, key=KEY, value=value, headers=[(PROVENANCE_HEADER, encode(provenance))])
    assert producer.flush(30) == 0
    rules = RuleSet(rules=[ConflictRule(topic=topic, policy="lww")])
    report = rebuild(us, [topic], rules, client=clients["us"], settings=state_settings)
    assert report.repaired == 1
    assert [msg.value() for msg in read_all(us.bootstrap, topic)] == [b"winner", b"loser", b"winner"]


def test_a_writer_alone_on_its_partitions_cannot_have_raced(us, clients, state_settings, topic) -> None:
    tails = Tails(us, clients["us"], state_settings)
    tails.register([(topic, 0), (topic, 1)])
    tails.state.register("another-writer", [(topic, 2), (f"{topic}-other", ANY_PARTITION)])
    try:
        assert not tails.may_have_raced()
    finally:
        tails.close()


@pytest.mark.parametrize(("mine", "theirs"), [(0, 0), (0, ANY_PARTITION), (ANY_PARTITION, 0)],
                         ids=["same-partition", "they-write-any", "i-write-any"])
def test_another_writer_on_a_shared_partition_may_have_raced(us, clients, state_settings, topic, mine,
                                                             theirs) -> None:
    tails = Tails(us, clients["us"], state_settings)
    tails.register([(topic, mine)])
    tails.state.register("another-writer", [(topic, theirs)])
    try:
        assert tails.may_have_raced()
    finally:
        tails.close()


def test_after_a_rebuild_every_writer_may_have_raced(us, clients, state_settings, topic) -> None:
    """The wipe before a rebuild took the registrations of writers whose records may still be landing."""
    tails = Tails(us, clients["us"], state_settings)
    tails.register([(topic, 0)])
    tails.state.mark_rebuilt()
    try:
        assert tails.may_have_raced()
    finally:
        tails.close()
