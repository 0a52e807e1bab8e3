"""Refusals: a record refused with others is a suspect, written alone it is found refused or cleared."""

from confluent_kafka import KafkaError

from amity.mirror.refusals import Refusals
from amity.mirror.router import Routed
from tests.unit.mirror.stubs import StubMessage

INVALID = KafkaError(KafkaError.INVALID_RECORD, "Broker failed to validate record")


def renamed(topic: str) -> str:
    return f"us.{topic}"


def written(key: bytes | None, value: bytes = b"v") -> StubMessage:
    """The delivery report's message: the record as written, into the destination topic."""
    return StubMessage(topic_="us.orders", key_=key, value_=value)


def routed(*keys: bytes | None) -> Routed:
    return Routed(forward=[(StubMessage(key_=key, offset_=i), []) for i, key in enumerate(keys)])


def test_records_refused_together_are_written_alone_when_read_again() -> None:
    refusals = Refusals("eu")
    refusals.note([(INVALID, written(None)), (INVALID, written(b"after"))])
    batch = routed(b"before", None, b"after")
    versions, alone = refusals.divert(batch, [1, 2, 3], renamed)
    assert versions == [1, 2, 3] and batch.dead == []
    assert alone == {id(batch.forward[1][0]), id(batch.forward[2][0])}


def test_a_suspect_refused_alone_is_dead_lettered_from_then_on_and_one_taken_is_cleared() -> None:
    refusals = Refusals("eu")
    refusals.note([(INVALID, written(None)), (INVALID, written(b"after"))])
    refusals.settle(INVALID, written(None))
    refusals.settle(None, written(b"after"))
    batch = routed(b"before", None, b"after")
    versions, alone = refusals.divert(batch, [1, 2, 3], renamed)
    assert [msg.key() for msg, _ in batch.forward] == [b"before", b"after"] and versions == [1, 3]
    assert alone == set()
    assert [(msg.key(), reason, detail) for msg, reason, detail in batch.dead] == [
        (None, "refused", "eu refused this record: Broker failed to validate record")]


def test_other_errors_and_other_values_are_not_refusals() -> None:
    refusals = Refusals("eu")
    refusals.note([(KafkaError(KafkaError.NOT_ENOUGH_REPLICAS), written(b"k"))])
    assert not refusals
    refusals.note([(INVALID, written(b"k", b"bad"))])
    batch = routed(b"k")
    assert refusals.divert(batch, None, renamed) == (None, set()), "same key, another value: not the suspect"


def test_values_of_one_key_are_suspects_apart_and_all_cleared_leave_nothing() -> None:
    refusals = Refusals("eu")
    refusals.note([(INVALID, written(b"k", b"1")), (INVALID, written(b"k", b"2"))])
    refusals.settle(None, written(b"k", b"1"))
    batch = Routed(forward=[(StubMessage(key_=b"k", value_=b"1"), []), (StubMessage(key_=b"k", value_=b"2"), [])])
    assert refusals.divert(batch, None, renamed) == (None, {id(batch.forward[1][0])})
    refusals.settle(None, written(b"k", b"2"))
    assert not refusals, "nothing left to look up per record"
