"""How many records a link takes per loop: an exactly-once batch is a transaction per partition, so it is larger."""

import pytest

from amity.links import Delivery, Link
from amity.mirror.link import LinkRunner
from amity.mirror.router import Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.regions import Region


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
def test_a_link_takes_its_delivery_modes_batch_size(delivery: Delivery, expected: int) -> None:
    link = Link(source="us", destination="eu", delivery=delivery)
    us = Region(name="us", bootstrap="127.0.0.1:1", redis="redis://127.0.0.1:1/0")
    eu = Region(name="eu", bootstrap="127.0.0.1:1", redis="redis://127.0.0.1:1/0")
    settings = MirrorSettings(batch_size=300, transaction_batch_size=7000)
    runner = LinkRunner(link, us, eu, Router(link, [link], ["us", "eu"], 8), settings, LinkStats(link.name))
    runner.consumer = _Consumer()
    try:
        assert runner._next_batch() == ["first", "more"]
    finally:
        runner._committer.shutdown()
        runner._lander.shutdown()
    assert runner.consumer.asked == [expected - 1]
