"""How much a link batches: records per loop (an exactly-once batch is a transaction per partition, so it is
larger), and bytes per producer batch (never more than a destination topic takes)."""

import pytest

from amity.links import Delivery, Link
from amity.mirror.link import batch_bytes
from amity.mirror.settings import MirrorSettings


class _Consumer:
    """Answers one record to poll, and remembers how many more consume was asked for."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def poll(self, timeout: float) -> str:
        return "first"

    def consume(self, num_messages: int, timeout: float) -> list[str]:
        self.asked.append(num_messages)
        return ["more"]


@pytest.mark.parametrize(("delivery", "expected"), [(Delivery.AT_LEAST_ONCE, 300), (Delivery.EXACTLY_ONCE, 7000)])
def test_a_link_takes_its_delivery_modes_batch_size(idle_runner, delivery: Delivery, expected: int) -> None:
    runner = idle_runner(Link(source="us", destination="eu", delivery=delivery),
                         MirrorSettings(batch_size=300, transaction_batch_size=7000))
    runner.consumer = _Consumer()
    assert runner._next_batch() == ["first", "more"]
    assert runner.consumer.asked == [expected - 1]


@pytest.mark.parametrize(("smallest", "expected"), [
    (16 * 1024 * 1024, 1_000_000), (1_048_588, 1_000_000), (20_000, 18_976), (10_000, 8_976), (1_500, 750),
])
def test_a_producer_batch_stays_under_the_smallest_destination_limit(smallest: int, expected: int) -> None:
    assert batch_bytes(smallest) == expected
    assert expected < smallest
