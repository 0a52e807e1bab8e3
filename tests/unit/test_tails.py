"""Which writers' registrations can have raced a writer's records (amity.tails), decided without a server."""

import pytest

from amity.tails import ANY_PARTITION, _overlap


@pytest.mark.parametrize(("mine", "shared", "overlap"), [
    ([("t", 0), ("t", 1)], set(), False),
    ([("t", 0), ("t", 1)], {("t", 2), ("u", 0)}, False),
    ([("t", 0), ("t", 1)], {("t", 1)}, True),
    ([("t", 0)], {("t", ANY_PARTITION)}, True),
    ([("t", ANY_PARTITION)], {("t", 5)}, True),
    ([("t", ANY_PARTITION)], {("u", 5), ("u", ANY_PARTITION)}, False),
    ([], {("t", 0)}, False),
], ids=["nobody-else", "other-partitions-and-topics", "same-partition", "they-write-any", "i-write-any",
        "any-of-another-topic", "i-write-nothing"])
def test_another_writer_meets_mine_on_a_shared_partition_or_through_any(mine, shared, overlap) -> None:
    assert _overlap(mine, shared) is overlap
