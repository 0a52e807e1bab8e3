"""StampRequests and FirstHops: what the stamp and first-hops scripts read, flattened, without a Redis."""

import struct

from hypothesis import given
from hypothesis import strategies as st

from amity.policies import Head, RankTemplate
from amity.state import MEMO_BUCKET, FirstHops, Hold, StampRequest, StampRequests

HOLD = Hold(RankTemplate(Head.DEPTH, b"\0\1", b"us\0"), 5)


def test_each_request_is_eight_fields_state_hash_floor_memo_slot_and_hold() -> None:
    columns = StampRequests.of([StampRequest(b"a", 7), StampRequest(b"b", 8, ("t", 2, 41), HOLD)])
    assert columns.fields == [b"a", struct.pack(">Q", 7), -1, 0, 0, "", "", 0,
                              b"b", struct.pack(">Q", 8), 41, 1, Head.DEPTH, b"\0\1", b"us\0", 5]
    assert columns.buckets == {("t", 2, 0): 1}


def test_a_refusal_is_a_memoised_request_whose_hold_kind_is_minus_one() -> None:
    columns = StampRequests()
    columns.refuse(b"a", ("t", 2, 41))
    assert columns.fields == [b"a", struct.pack(">Q", 0), 41, 1, -1, "", "", 0]
    assert columns.buckets == {("t", 2, 0): 1}


def test_memos_of_one_bucket_share_a_slot_and_new_buckets_take_the_next_one() -> None:
    columns = StampRequests()
    for memo in [("t", 0, 1), ("t", 0, MEMO_BUCKET - 1), ("t", 0, MEMO_BUCKET), ("t", 1, 1), ("u", 0, 1),
                 ("t", 0, 2)]:
        columns.add(b"k", 0, memo)
    assert columns.fields[3::8] == [1, 1, 2, 3, 4, 1]
    assert list(columns.buckets) == [("t", 0, 0), ("t", 0, 1), ("t", 1, 0), ("u", 0, 0)]


memos = st.none() | st.tuples(st.sampled_from(["t", "u"]), st.integers(0, 3), st.integers(0, 3 * MEMO_BUCKET))


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=4), st.integers(0, 2**64 - 1), memos,
                          st.sampled_from([None, HOLD]))))
def test_every_requests_memo_names_the_slot_of_its_bucket(requests: list[tuple]) -> None:
    columns = StampRequests.of([StampRequest(*request) for request in requests])
    assert len(columns) == len(requests) and len(columns.fields) == 8 * len(requests)
    assert sorted(columns.buckets.values()) == list(range(1, len(columns.buckets) + 1))
    for i, (key, floor, memo, _) in enumerate(requests):
        assert columns.fields[8 * i: 8 * i + 2] == [key, struct.pack(">Q", floor)]
        if memo is not None:
            topic, partition, offset = memo
            assert columns.fields[8 * i + 2: 8 * i + 4] == [offset,
                                                             columns.buckets[(topic, partition, offset // MEMO_BUCKET)]]


@given(st.lists(st.tuples(st.sampled_from(["t", "u"]), st.integers(0, 2), st.integers(0, 3 * MEMO_BUCKET),
                          st.booleans())))
def test_first_hops_give_each_memo_hash_its_lowest_and_highest_offset_and_its_refusals(
        records: list[tuple]) -> None:
    hops = FirstHops()
    for topic, partition, offset, refused in records:
        hops.add(topic, partition, offset, refused)
    expected: dict = {}
    for topic, partition, offset, refused in records:
        expected.setdefault((topic, partition, offset // MEMO_BUCKET), []).append((offset, refused))
    assert len(hops) == len(expected)
    for bucket, passed in expected.items():
        offsets = [offset for offset, _ in passed]
        assert hops.hashes[bucket] == [min(offsets), max(offsets), [offset for offset, refused in passed if refused]]
