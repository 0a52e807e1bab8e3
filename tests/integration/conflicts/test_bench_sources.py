"""The benchmark's stamped sources on real Kafka and Redis: what the `*-stamped` scenarios give the mirror."""

from collections import Counter

from amity.bench.data import write_stamped_records
from amity.headers import decode, find_provenance
from amity.state import VersionState
from tests.support.kafka import create_topic, read_all

RECORDS, KEYS, SIZE = 2_400, 40, 200


def test_stamped_sources_carry_their_stamp_and_are_held_in_the_region(regions, clients, state_settings,
                                                                      topic) -> None:
    us = regions["us"]
    create_topic(us.bootstrap, topic)

    write_stamped_records(us, topic, RECORDS, SIZE, KEYS, "lww", settings=state_settings)

    records = read_all(us.bootstrap, topic)
    assert len(records) == RECORDS
    assert all(len(m.value()) == SIZE for m in records)
    assert Counter(m.key() for m in records) == {f"k{i}".encode(): RECORDS // KEYS for i in range(KEYS)}
    stamps = [decode(find_provenance(m.headers())) for m in records]
    assert {(p.origin, p.path) for p in stamps} == {("us", ("us",))}
    assert all(p.hlc is not None for p in stamps)
    last = {m.key(): p for m, p in zip(records, stamps)}
    state = VersionState(clients["us"], state_settings)
    for key, provenance in last.items():
        assert dict(provenance.vector) == {"us": RECORDS // KEYS}, key
        assert state.read(topic, key)[b"v"] == state.read(topic, key)[b"m"], key
