"""The benchmark's stamped sources on real Kafka and Redis: what the `*-stamped` scenarios give the mirror."""

from collections import Counter

from amity.bench.data import CHUNK_RECORDS, write_stamped_records
from amity.headers import decode, find_provenance
from amity.state import VersionState
from tests.support.kafka import create_topic, read_all

RECORDS, KEYS, SIZE = 2 * CHUNK_RECORDS + 400, 40, 200


def test_stamped_sources_carry_their_stamp_are_held_and_use_keys_of_their_region(regions, clients, state_settings,
                                                                                 topic) -> None:
    for region in regions.values():
        create_topic(region.bootstrap, topic)

    write_stamped_records([regions["us"], regions["eu"]], topic, RECORDS, SIZE, KEYS, "lww", settings=state_settings)

    clocks = {}
    for name in ("us", "eu"):
        records = read_all(regions[name].bootstrap, topic)
        assert len(records) == RECORDS
        assert all(len(m.value()) == SIZE for m in records)
        assert Counter(m.key() for m in records) == {f"{name}-k{i}".encode(): RECORDS // KEYS for i in range(KEYS)}
        stamps = [decode(find_provenance(m.headers())) for m in records]
        assert {(p.origin, p.path) for p in stamps} == {(name, (name,))}
        clocks[name] = sorted(p.hlc for p in stamps)
        state = VersionState(clients[name], state_settings)
        last = {m.key(): p for m, p in zip(records, stamps)}
        for key, provenance in last.items():
            assert dict(provenance.vector) == {name: RECORDS // KEYS}, key
            assert state.read(topic, key)[b"v"] == state.read(topic, key)[b"m"], key
    assert clocks["us"][0] < clocks["eu"][-1] and clocks["eu"][0] < clocks["us"][-1], "chunks take turns"
