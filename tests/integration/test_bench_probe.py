"""The benchmark's latency probe against a real broker: the sender times nothing before its producer is ready."""

from amity.bench.probe import PRIME, send, unstamp
from tests.support.kafka import create_topic, read_all

PROBE_ID, COUNT = 7, 30


def test_the_sender_times_nothing_before_its_priming_record_is_acknowledged(regions, topic) -> None:
    """The broker's append time of the priming record is no later than the first timed record's send time: the
    sender waited for it, so a producer that is slow to start delays no measured record."""
    us = regions["us"]
    create_topic(us.bootstrap, topic, partitions=3, config={"message.timestamp.type": "LogAppendTime"})
    result = send(us.bootstrap, topic, PROBE_ID, rate=1000, count=COUNT, size=64)
    records = read_all(us.bootstrap, topic)
    primes = [m for m in records if m.value() == PRIME]
    timed = [unstamp(m.value(), PROBE_ID) for m in records if m.value() != PRIME]
    assert result["sent"] == COUNT
    assert [(m.partition(), m.offset()) for m in primes] == [(0, 0)]
    assert sorted(seq for seq, _ in timed) == list(range(COUNT))
    first_sent_ms = min(sent_ns for _, sent_ns in timed) // 1_000_000
    assert primes[0].timestamp()[1] <= first_sent_ms, (primes[0].timestamp(), first_sent_ms)
