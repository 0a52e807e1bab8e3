"""The processed-records filter: skips exactly what the frontier says the group processed."""

from amity.failover.filter import ProcessedFilter
from amity.headers import PROVENANCE_HEADER, Provenance, encode
from tests.unit.mirror.stubs import StubMessage


def mirrored(origin: str, partition: int, offset: int, into: str = "eu") -> StubMessage:
    header = encode(Provenance(origin, "orders", partition, offset, 0, (origin, into)))
    return StubMessage(partition_=partition, offset_=9999, headers_=[(PROVENANCE_HEADER, header)])


def test_mirrored_records_up_to_the_frontier_are_skipped() -> None:
    skip = ProcessedFilter("eu", {("us", "orders", 0): 41}).already_processed
    assert skip(mirrored("us", 0, 41)) is True
    assert skip(mirrored("us", 0, 42)) is False
    assert skip(mirrored("us", 1, 0)) is False
    assert skip(mirrored("ap", 0, 0)) is False


def test_local_records_count_by_their_own_offset() -> None:
    skip = ProcessedFilter("eu", {("eu", "orders", 2): 10}).already_processed
    assert skip(StubMessage(partition_=2, offset_=10)) is True
    assert skip(StubMessage(partition_=2, offset_=11)) is False
    assert skip(StubMessage(partition_=1, offset_=0)) is False


def test_a_header_amity_cannot_have_written_here_is_a_local_record() -> None:
    skip = ProcessedFilter("eu", {("us", "orders", 0): 100, ("eu", "orders", 0): 5}).already_processed
    replayed = mirrored("us", 0, 3, into="ap")
    replayed.offset_ = 6
    assert skip(replayed) is False


def test_without_a_move_nothing_is_skipped() -> None:
    assert ProcessedFilter("eu", {}).already_processed(mirrored("us", 0, 0)) is False
