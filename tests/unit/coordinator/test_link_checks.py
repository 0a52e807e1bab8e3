"""Link validation: unknown regions, colliding links, dry-run plans."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.coordinator.link_checks import collision, first_collision, plan, unknown_regions
from amity.coordinator.patterns import literal_prefix
from amity.links import Link, Naming

ALPHABET = "ab.-"
tokens = st.sampled_from(["a", "b", "ab", "\\.", "-", ".", ".*", "a*", "b+", "[ab]", "(a|b)", "a?"])
patterns = st.lists(tokens, min_size=0, max_size=4).map("".join)
pattern_lists = st.lists(patterns, min_size=1, max_size=3).map(tuple)
topics = st.text(alphabet=ALPHABET, min_size=1, max_size=6)
namings = st.sampled_from(list(Naming))


def us_to_eu(include: tuple[str, ...], exclude: tuple[str, ...] = (), naming: Naming = Naming.IDENTITY) -> Link:
    return Link(source="us", destination="eu", include=include, exclude=exclude, naming=naming)


@given(patterns, st.lists(topics, max_size=20))
def test_literal_prefix_starts_every_match(pattern: str, candidates: list[str]) -> None:
    import re
    prefix = literal_prefix(pattern)
    for topic in candidates + [prefix.text]:
        if re.fullmatch(pattern, topic):
            assert topic.startswith(prefix.text)
            assert not prefix.exact or topic == prefix.text


@settings(max_examples=300)
@given(pattern_lists, st.lists(patterns, max_size=2).map(tuple), namings,
       pattern_lists, st.lists(patterns, max_size=2).map(tuple), namings,
       st.lists(topics, min_size=1, max_size=30))
def test_links_passed_as_disjoint_never_write_the_same_topic(
        inc_a: tuple, exc_a: tuple, naming_a: Naming, inc_b: tuple, exc_b: tuple, naming_b: Naming,
        candidates: list[str]) -> None:
    a, b = us_to_eu(inc_a, exc_a, naming_a), us_to_eu(inc_b, exc_b, naming_b)
    if collision(a, b) is not None:
        return
    candidates += [f"us.{topic}" for topic in candidates]
    assert not [t for t in candidates if a.selects(t) and b.selects(t)]
    written_a = {a.destination_topic(t) for t in candidates if a.selects(t)}
    written_b = {b.destination_topic(t) for t in candidates if b.selects(t)}
    assert not written_a & written_b


def test_overlapping_patterns_are_refused() -> None:
    assert "both may replicate" in collision(us_to_eu((".*",)), us_to_eu(("orders-.*",)))


def test_a_literal_topic_selected_by_both_is_named() -> None:
    assert collision(us_to_eu((".*",)), us_to_eu(("orders",))) == "both would replicate topic 'orders' from region 'us'"


def test_an_existing_topic_selected_by_both_is_named() -> None:
    message = collision(us_to_eu(("ord.*",)), us_to_eu(("or.*",)), ["orders", "other"])
    assert message == "both would replicate topic 'orders' from region 'us'"


def test_different_literal_starts_are_disjoint() -> None:
    assert collision(us_to_eu(("orders-.*",)), us_to_eu(("payments-.*",))) is None


def test_excluding_the_other_links_pattern_makes_them_disjoint() -> None:
    assert collision(us_to_eu((".*",), ("payments.*",)), us_to_eu(("payments.*",))) is None


def test_the_same_source_topics_collide_whatever_the_naming() -> None:
    message = collision(us_to_eu(("orders.*",)), us_to_eu(("orders.*",), naming=Naming.PREFIX))
    assert message.startswith("both may replicate topics matching")


def test_a_literal_topic_both_select_is_named_across_namings() -> None:
    message = collision(us_to_eu(("orders",)), us_to_eu((".*",), naming=Naming.PREFIX))
    assert message == "both would replicate topic 'orders' from region 'us'"


def test_different_namings_of_disjoint_topics_pass() -> None:
    assert collision(us_to_eu(("orders-.*",)), us_to_eu(("payments-.*",), naming=Naming.PREFIX)) is None


def test_identity_copy_of_a_prefixed_name_collides_with_prefix_naming() -> None:
    message = collision(us_to_eu(("us\\.orders",)), us_to_eu(("o.*",), naming=Naming.PREFIX))
    assert message == "both would write topic 'us.orders' in region 'eu'"


def test_links_between_other_regions_never_collide() -> None:
    other = Link(source="us", destination="ap")
    assert collision(us_to_eu((".*",)), other) is None


def test_first_collision_names_the_existing_link() -> None:
    others = {"us-to-eu": us_to_eu((".*",)), "x": Link(source="eu", destination="us")}
    message = first_collision(us_to_eu(("orders",)), others)
    assert message.startswith("link 'us-to-eu' covers the same topics from us to eu")


@pytest.mark.parametrize(("link", "regions", "unknown"), [
    (Link(source="us", destination="eu"), {"us", "eu"}, []),
    (Link(source="us", destination="xx"), {"us", "eu"}, ["xx"]),
    (Link(source="yy", destination="xx"), set(), ["xx", "yy"]),
])
def test_unknown_regions(link: Link, regions: set[str], unknown: list[str]) -> None:
    assert unknown_regions(link, regions) == unknown


def test_plan_lists_selected_topics_with_destination_names() -> None:
    link = Link(source="us", destination="eu", include=("orders.*", "eu\\..*"), naming=Naming.PREFIX)
    selected, skipped = plan(link, ["orders", "orders-v2", "payments", "__consumer_offsets", "eu.orders"])
    assert selected == [("orders", "us.orders"), ("orders-v2", "us.orders-v2")]
    assert skipped == ["__consumer_offsets", "eu.orders", "payments"]
