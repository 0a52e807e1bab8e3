"""The router's per-record decisions: stamp, forward, drop by reason, dead-letter by reason."""

import time

from amity.headers import PROVENANCE_HEADER, Provenance, decode, encode, find_provenance
from amity.links import Link
from amity.mirror.router import Router, record_size
from tests.unit.mirror.stubs import StubMessage

REGIONS = ["us", "eu", "ap"]


def mesh(names: list[str]) -> list[Link]:
    return [Link(source=a, destination=b) for a in names for b in names if a != b]


def router(source: str = "us", destination: str = "eu", links: list[Link] | None = None, max_hops: int = 8) -> Router:
    links = links if links is not None else mesh(REGIONS)
    link = next(link for link in links if (link.source, link.destination) == (source, destination))
    return Router(link, links, REGIONS, max_hops)


def mirrored(path: tuple[str, ...], origin: str | None = None) -> list[tuple[str, bytes]]:
    provenance = Provenance(origin=origin or path[0], topic="orders", partition=1, offset=9,
                            timestamp_ms=5, path=path, hlc=None, vector=None)
    return [("app", b"1"), (PROVENANCE_HEADER, encode(provenance))]


def test_a_local_record_is_stamped_with_the_source_as_origin() -> None:
    msg = StubMessage(partition_=2, offset_=41, headers_=[("app", b"x")])
    routed = router().route([msg], {})
    [(forwarded, headers)] = routed.forward
    assert forwarded is msg
    assert headers[0] == ("app", b"x")
    provenance = decode(find_provenance(headers))
    assert (provenance.origin, provenance.topic, provenance.partition, provenance.offset) == ("us", "orders", 2, 41)
    assert provenance.path == ("us", "eu")
    assert provenance.timestamp_ms == msg.timestamp_


def test_a_stamped_record_of_a_topic_without_a_rule_leaves_with_its_coordinates_in_the_source() -> None:
    """amity.Producer cannot know a record's offset and writes placeholders: whether the mirror resolves the topic
    or not (a rule set apart from the producer's), the first hop writes the broker's coordinates, which failover
    translates offsets by."""
    stamped = Provenance(origin="us", topic="orders", partition=0, offset=0, timestamp_ms=5, path=("us",),
                         hlc=7 << 16, vector=(("us", 3),))
    msg = StubMessage(partition_=2, offset_=41, headers_=[(PROVENANCE_HEADER, encode(stamped))])
    [(_, headers)] = router().route([msg], {}).forward
    assert decode(find_provenance(headers)) == stamped._replace(partition=2, offset=41, path=("us", "eu"))


def test_a_record_is_never_written_back_into_a_region_on_its_path() -> None:
    routed = router("eu", "us").route([StubMessage(headers_=mirrored(("us", "eu")))], {})
    assert routed.forward == [] and routed.dead == []
    assert routed.dropped == {("orders", "loop"): 1}


def test_a_record_copied_with_its_headers_into_another_topic_is_a_local_write_of_that_topic() -> None:
    copied = StubMessage(topic_="orders-enriched", offset_=3, headers_=mirrored(("us", "eu")))
    routed = router("eu", "us").route([copied], {})
    [(msg, headers)] = routed.forward
    provenance = decode(find_provenance(headers))
    assert (provenance.origin, provenance.topic, provenance.offset, provenance.path) == (
        "eu", "orders-enriched", 3, ("eu", "us"))
    assert [name for name, _ in headers].count(PROVENANCE_HEADER) == 1


def test_a_prefixed_copy_of_the_origin_topic_keeps_its_provenance() -> None:
    links = [Link(source="us", destination="eu", naming="prefix"), Link(source="eu", destination="us")]
    routed = router("eu", "us", links).route([StubMessage(topic_="us.orders", headers_=mirrored(("us", "eu")))], {})
    assert routed.forward == [] and routed.dropped == {("us.orders", "loop"): 1}


def test_in_a_full_mesh_only_records_of_the_source_region_are_forwarded() -> None:
    routed = router("eu", "ap").route([StubMessage(headers_=mirrored(("us", "eu")))], {})
    assert routed.dropped == {("orders", "off-route"): 1}


def test_a_chain_forwards_through_the_middle_region() -> None:
    chain = [Link(source="us", destination="eu"), Link(source="eu", destination="ap")]
    arriving = mirrored(("us", "eu"))
    routed = router("eu", "ap", links=chain).route([StubMessage(headers_=arriving)], {})
    [(_, headers)] = routed.forward
    assert decode(find_provenance(headers)) == decode(find_provenance(arriving)).crossed("ap"), (
        "the path grows by the destination; origin, coordinates, timestamp and stamp are kept")


def test_routing_uses_only_links_that_replicate_the_topic() -> None:
    links = [Link(source="us", destination="eu"), Link(source="eu", destination="ap"),
             Link(source="us", destination="ap", exclude=("orders",))]
    routed = router("eu", "ap", links=links).route([StubMessage(headers_=mirrored(("us", "eu")))], {})
    assert len(routed.forward) == 1


def test_local_records_are_routed_over_the_link_graph_of_their_batch() -> None:
    r = router("us", "eu")
    assert len(r.route([StubMessage()], {}).forward) == 1
    excluding = [Link(source="us", destination="eu", exclude=("orders",)), Link(source="eu", destination="us")]
    r.relink(excluding, REGIONS)
    routed = r.route([StubMessage(), StubMessage(topic_="other")], {})
    assert routed.dropped == {("orders", "off-route"): 1}
    assert [msg.topic() for msg, _ in routed.forward] == ["other"]


def test_max_hops_stops_records_that_crossed_too_many_links() -> None:
    chain = [Link(source="us", destination="eu"), Link(source="eu", destination="ap")]
    routed = router("eu", "ap", links=chain, max_hops=1).route([StubMessage(headers_=mirrored(("us", "eu")))], {})
    assert routed.dropped == {("orders", "max-hops"): 1}


def test_malformed_and_forged_headers_are_dead_lettered_with_their_reason() -> None:
    batch = [
        StubMessage(offset_=1, headers_=[(PROVENANCE_HEADER, b"\xc1")]),
        StubMessage(offset_=2, headers_=mirrored(("eu", "ap"))),
        StubMessage(offset_=3),
    ]
    routed = router().route(batch, {})
    assert [(m.offset(), reason) for m, reason, _ in routed.dead] == [(1, "bad-msgpack"), (2, "forged")]
    assert [m.offset() for m, _ in routed.forward] == [3]


def test_a_record_from_an_unknown_origin_is_dead_lettered_not_dropped() -> None:
    headers = mirrored(("sa", "us"))
    routed = router().route([StubMessage(headers_=headers)], {})
    assert [reason for _, reason, _ in routed.dead] == ["unknown-origin"]


def test_a_record_larger_than_the_destination_takes_is_dead_lettered() -> None:
    small, large = StubMessage(offset_=1, value_=b"x" * 10), StubMessage(offset_=2, value_=b"x" * 5000)
    routed = router().route([small, large], {"orders": 1000})
    assert [m.offset() for m, _ in routed.forward] == [1]
    [(msg, reason, detail)] = routed.dead
    assert (msg.offset(), reason) == (2, "too-large") and "1000" in detail


def test_a_keyless_record_for_a_compacted_destination_is_dead_lettered() -> None:
    keyed, keyless = StubMessage(offset_=1), StubMessage(offset_=2, key_=None)
    other = StubMessage(topic_="logs", offset_=3, key_=None)
    routed = router().route([keyed, keyless, other], {}, frozenset({"orders"}))
    assert [m.offset() for m, _ in routed.forward] == [1, 3]
    [(msg, reason, detail)] = routed.dead
    assert (msg.offset(), reason) == (2, "keyless-compacted") and "refuses records without a key" in detail


def test_a_record_outside_its_destinations_timestamp_window_is_dead_lettered_once_checked() -> None:
    now = int(time.time() * 1000)
    fresh, old, unset = (StubMessage(offset_=1, timestamp_=now), StubMessage(offset_=2, timestamp_=now - 7_200_000),
                         StubMessage(offset_=3, timestamp_=-1))
    routed = router().route([fresh, old, unset], {}, frozenset(), {"orders": (3_600_000, 2**63 - 1)})
    assert [m.offset() for m, _ in routed.forward] == [1, 3]
    [(msg, reason, _detail)] = routed.dead
    assert (msg.offset(), reason) == (2, "timestamp-refused")
    assert [m.offset() for m, _ in router().route([old], {}).forward] == [2], "unchecked topics are not read"


def test_record_size_counts_key_value_and_headers() -> None:
    msg = StubMessage(key_=b"kk", value_=b"vvv")
    assert record_size(msg, [("h", b"12")]) - record_size(msg, []) == len("h") + 2 + 8
    assert record_size(StubMessage(key_=None, value_=None), []) < record_size(msg, [])


def test_records_without_a_timestamp_are_stamped_with_zero() -> None:
    [(_, headers)] = router().route([StubMessage(timestamp_=-1)], {}).forward
    assert decode(find_provenance(headers)).timestamp_ms == 0


def test_two_provenance_headers_on_one_record_are_dead_lettered() -> None:
    headers = mirrored(("us", "eu")) + mirrored(("us", "eu"))[1:]
    routed = router("eu", "ap").route([StubMessage(headers_=headers)], {})
    assert [reason for _, reason, _ in routed.dead] == ["duplicate-header"]


def test_a_loop_of_a_shape_dropped_before_is_dropped_undecoded_and_a_malformed_one_dead_lettered() -> None:
    r = router("eu", "us")
    r.route([StubMessage(headers_=mirrored(("us", "eu")))], {})
    decoded: list[bytes] = []
    checked = r._provenance
    r._provenance = lambda raw, topic: decoded.append(raw) or checked(raw, topic)
    out_of_range = Provenance("us", "orders", 1, 9, 5, ("us", "eu"))._replace(offset=1 << 63)
    forged = [("app", b"1"), (PROVENANCE_HEADER, encode(out_of_range))]
    routed = r.route([StubMessage(offset_=1, headers_=mirrored(("us", "eu"))), StubMessage(offset_=2, headers_=forged)],
                     {})
    assert routed.dropped == {("orders", "loop"): 1}
    assert [(m.offset(), reason) for m, reason, _ in routed.dead] == [(2, "bad-number")]
    assert decoded == [forged[1][1]], "only the header the remembered shape did not match was decoded"


def test_shapes_dropped_under_an_old_link_graph_are_forgotten_when_it_changes() -> None:
    r = router("eu", "ap")
    assert r.route([StubMessage(headers_=mirrored(("us", "eu")))], {}).dropped == {("orders", "off-route"): 1}
    r.relink([Link(source="us", destination="eu"), Link(source="eu", destination="ap")], REGIONS)
    assert len(r.route([StubMessage(headers_=mirrored(("us", "eu")))], {}).forward) == 1
