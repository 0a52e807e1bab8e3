"""Origin streams: the fast header reader agrees with the full codec, and frontiers survive the wire."""

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.failover.streams import (
    advance, from_wire, merged, mirrored_origin, origin_of, provenance_value, to_wire,
)
from amity.headers import (
    MAX_HEADER_BYTES, PROVENANCE_HEADER, MalformedProvenance, Provenance, check_consistent, decode, encode,
)

regions = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,31}", fullmatch=True)
topics = st.from_regex(r"[a-zA-Z0-9._-]{1,249}", fullmatch=True).filter(lambda t: t not in (".", ".."))


@st.composite
def provenances(draw: st.DrawFn) -> Provenance:
    path = tuple(draw(st.lists(regions, min_size=1, max_size=16, unique=True)))
    return Provenance(path[0], draw(topics), draw(st.integers(0, (1 << 31) - 1)), draw(st.integers(0, (1 << 63) - 1)),
                      draw(st.integers(0, (1 << 63) - 1)), path)


def full_codec(raw: bytes, region: str) -> tuple[tuple[str, str, int], int] | None:
    """What the mirror itself concludes about a header read in `region`."""
    try:
        provenance = decode(raw)
        check_consistent(provenance, region)
    except MalformedProvenance:
        return None
    return (provenance.origin, provenance.topic, provenance.partition), provenance.offset


@given(provenances(), regions)
def test_fast_reader_agrees_with_the_codec_on_valid_headers(provenance: Provenance, region: str) -> None:
    raw = encode(provenance)
    assert mirrored_origin(raw, region) == full_codec(raw, region)
    assert mirrored_origin(raw, provenance.path[-1]) == full_codec(raw, provenance.path[-1])


def test_a_mirrored_header_names_its_origin_coordinates() -> None:
    raw = encode(Provenance("us", "orders", 3, 42, 7, ("us", "eu")))
    assert mirrored_origin(raw, "eu") == (("us", "orders", 3), 42)


@pytest.mark.parametrize("path, region", [(("us",), "us"), (("us", "eu"), "ap"), (("us", "eu"), "us")])
def test_a_header_amity_cannot_have_written_there_is_not_trusted(path: tuple[str, ...], region: str) -> None:
    assert mirrored_origin(encode(Provenance("us", "orders", 0, 5, 0, path)), region) is None


@pytest.mark.parametrize("fields", [
    [True, "us", "t", 0, 0, 0, ["us", "eu"], None, None],
    [2, "us", "t", 0, 0, 0, ["us", "eu"], None, None],
    [1, "us", "t", 0, 0, 0, ["us", "eu"], None],
    [1, "US", "t", 0, 0, 0, ["US", "eu"], None, None],
    [1, "us", "..", 0, 0, 0, ["us", "eu"], None, None],
    [1, "us", "t", -1, 0, 0, ["us", "eu"], None, None],
    [1, "us", "t", 0, 1 << 63, 0, ["us", "eu"], None, None],
    [1, "us", "t", 0, 0.5, 0, ["us", "eu"], None, None],
    [1, "us", "t", 0, 0, 0, "us,eu", None, None],
    [1, "us", "t", 0, 0, 0, [{}, "eu"], None, None],
    [1, {"a": 1}, "t", 0, 0, 0, ["us", "eu"], None, None],
])
def test_malformed_fields_count_the_record_as_local(fields: list) -> None:
    assert mirrored_origin(msgpack.packb(fields), "eu") is None


@settings(max_examples=500)
@given(st.binary(max_size=300), regions)
def test_arbitrary_bytes_never_raise_and_never_pass_what_the_codec_refuses(raw: bytes, region: str) -> None:
    found = mirrored_origin(raw, region)
    if found is not None:
        assert full_codec(raw, region) is not None


def test_oversized_header_is_local() -> None:
    fields = [1, "us", "t", 0, 0, 0, ["us", "eu"], None, {f"region-{i:04d}": 1 for i in range(400)}]
    raw = msgpack.packb(fields)
    assert len(raw) > MAX_HEADER_BYTES
    assert mirrored_origin(raw, "eu") is None


def test_record_without_a_header_is_its_own_stream() -> None:
    assert origin_of(None, "eu", ("eu", "orders", 2), 17) == (("eu", "orders", 2), 17)
    assert origin_of([("other", b"x")], "eu", ("eu", "orders", 2), 17) == (("eu", "orders", 2), 17)


def test_repeated_or_null_provenance_counts_the_record_as_local() -> None:
    raw = encode(Provenance("us", "orders", 3, 42, 7, ("us", "eu")))
    assert provenance_value([(PROVENANCE_HEADER, raw), (PROVENANCE_HEADER, raw)]) is None
    assert provenance_value([(PROVENANCE_HEADER, None)]) is None
    assert origin_of([(PROVENANCE_HEADER, raw)], "eu", ("eu", "orders", 3), 9) == (("us", "orders", 3), 42)


def test_advance_only_raises() -> None:
    frontier = {("us", "t", 0): 5}
    advance(frontier, ("us", "t", 0), 3)
    advance(frontier, ("eu", "t", 0), 0)
    advance(frontier, ("us", "t", 0), 9)
    assert frontier == {("us", "t", 0): 9, ("eu", "t", 0): 0}


def test_merged_takes_the_maximum_per_stream() -> None:
    assert merged([{("us", "t", 0): 5}, {("us", "t", 0): 2, ("eu", "t", 1): 4}]) == {("us", "t", 0): 5,
                                                                                      ("eu", "t", 1): 4}


frontiers = st.dictionaries(st.tuples(regions, topics, st.integers(0, 1000)), st.integers(0, (1 << 63) - 1),
                            max_size=8)


@given(frontiers)
def test_frontier_wire_form_round_trips_through_msgpack(frontier: dict) -> None:
    assert from_wire(msgpack.unpackb(msgpack.packb(to_wire(frontier)))) == frontier
