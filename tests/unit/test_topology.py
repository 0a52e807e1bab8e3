"""Spanning-tree routing: named topologies, validation, and flooding random graphs record by record."""

from collections import Counter, deque
from itertools import permutations
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.errors import AmityError
from amity.headers import MAX_PATH
from amity.topology import Edge, Topology, TopologyError, Verdict

NAMES = ("a", "b", "c", "d", "e", "f", "g")
PLENTY = MAX_PATH - 1


def mesh(names: tuple[str, ...]) -> Topology:
    return Topology(names, [(s, d) for s in names for d in names if s != d])


def both_ways(*pairs: Edge) -> list[Edge]:
    return [edge for s, d in pairs for edge in ((s, d), (d, s))]


def flood(topology: Topology, origin: str, max_hops: int = PLENTY) -> Counter[str]:
    """Produce one record in `origin`, let every link forward what its source region holds; count arrivals."""
    arrivals: Counter[str] = Counter()
    pending = deque([(origin,)])
    while pending:
        path = pending.popleft()
        source = path[-1]
        for link_source, destination in sorted(topology.edges):
            if link_source != source:
                continue
            if topology.route(origin, path, source, destination, max_hops) is Verdict.FORWARD:
                arrivals[destination] += 1
                pending.append((*path, destination))
        assert sum(arrivals.values()) <= len(topology.regions) ** 2, "flood does not stop"
    return arrivals


def distances(topology: Topology, origin: str) -> dict[str, int]:
    """Shortest hop counts by repeated relaxation, independent of the code under test."""
    best = {origin: 0}
    for _ in topology.regions:
        for source, destination in topology.edges:
            if source in best and best[source] + 1 < best.get(destination, len(topology.regions) + 1):
                best[destination] = best[source] + 1
    return best


# --- random graphs ----------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> Topology:
    names = NAMES[: draw(st.integers(2, len(NAMES)))]
    pairs = [(s, d) for s in names for d in names if s != d]
    edges = set(draw(st.lists(st.sampled_from(pairs), unique=True)))
    if draw(st.booleans()):  # a ring through every region makes the graph strongly connected
        order = draw(st.permutations(names))
        edges.update(zip(order, order[1:] + order[:1], strict=True))
    elif draw(st.booleans()):  # a path through every region makes it at least weakly connected
        order = draw(st.permutations(names))
        edges.update(zip(order, order[1:], strict=False))
    return Topology(names, sorted(edges))


@settings(max_examples=300)
@given(graphs())
def test_flooding_delivers_each_record_exactly_once_to_each_reachable_region(topology: Topology) -> None:
    for origin in topology.regions:
        arrivals = flood(topology, origin)
        reachable = set(distances(topology, origin)) - {origin}
        assert set(arrivals) == reachable
        assert all(count == 1 for count in arrivals.values())
        assert origin not in arrivals


@settings(max_examples=300)
@given(graphs(), st.integers(0, len(NAMES)))
def test_max_hops_stops_at_that_depth_and_never_duplicates(topology: Topology, max_hops: int) -> None:
    for origin in topology.regions:
        arrivals = flood(topology, origin, max_hops)
        near = {region for region, hops in distances(topology, origin).items() if 0 < hops <= max_hops}
        assert set(arrivals) == near
        assert all(count == 1 for count in arrivals.values())


@settings(max_examples=300)
@given(graphs())
def test_each_tree_is_a_shortest_path_tree_of_existing_links(topology: Topology) -> None:
    for origin in topology.regions:
        tree = topology.tree_edges(origin)
        depth = distances(topology, origin)
        assert tree <= topology.edges
        children = [child for _, child in tree]
        assert sorted(children) == sorted(set(depth) - {origin})  # one parent each, origin none
        assert all(depth[child] == depth[parent] + 1 for parent, child in tree)


@settings(max_examples=200)
@given(graphs(), st.randoms(use_true_random=False))
def test_trees_do_not_depend_on_the_order_regions_and_links_are_given(topology: Topology, rng: Random) -> None:
    regions, edges = sorted(topology.regions), sorted(topology.edges)
    rng.shuffle(regions)
    rng.shuffle(edges)
    shuffled = Topology(regions, edges)
    assert shuffled == topology
    for origin in topology.regions:
        assert shuffled.tree_edges(origin) == topology.tree_edges(origin)


@settings(max_examples=200)
@given(graphs())
def test_unreachable_lists_what_flooding_never_reaches(topology: Topology) -> None:
    expected = {}
    for origin in topology.regions:
        missing = topology.regions - set(flood(topology, origin)) - {origin}
        if missing:
            expected[origin] = missing
    assert topology.unreachable() == expected


# --- named topologies -------------------------------------------------------


def test_two_regions_each_forward_their_own_records_and_stop_the_copies() -> None:
    pair = Topology(["us", "eu"], both_ways(("us", "eu")))
    assert pair.route("us", ("us",), "us", "eu", PLENTY) is Verdict.FORWARD
    assert pair.route("us", ("us", "eu"), "eu", "us", PLENTY) is Verdict.LOOP
    assert pair.route("eu", ("eu",), "eu", "us", PLENTY) is Verdict.FORWARD
    assert pair.route("eu", ("eu", "us"), "us", "eu", PLENTY) is Verdict.LOOP


@pytest.mark.parametrize("size", [3, 4, 5, 7])
def test_in_a_full_mesh_only_a_records_origin_forwards_it(size: int) -> None:
    names = NAMES[:size]
    topology = mesh(names)
    for origin in names:
        assert flood(topology, origin) == Counter({r: 1 for r in names if r != origin})
        for source, destination in topology.edges:
            if source == origin:
                continue
            path = (origin, source)
            expected = Verdict.LOOP if destination == origin else Verdict.OFF_ROUTE
            assert topology.route(origin, path, source, destination, PLENTY) is expected


def test_in_a_mesh_the_second_route_to_a_region_is_off_route() -> None:
    topology = mesh(("a", "b", "c"))
    assert topology.route("a", ("a",), "a", "c", PLENTY) is Verdict.FORWARD
    assert topology.route("a", ("a", "b"), "b", "c", PLENTY) is Verdict.OFF_ROUTE


def test_in_a_chain_records_cross_every_link_in_turn() -> None:
    chain = Topology(["a", "b", "c"], both_ways(("a", "b"), ("b", "c")))
    assert chain.route("a", ("a",), "a", "b", PLENTY) is Verdict.FORWARD
    assert chain.route("a", ("a", "b"), "b", "c", PLENTY) is Verdict.FORWARD
    assert chain.route("a", ("a", "b", "c"), "c", "b", PLENTY) is Verdict.LOOP
    assert chain.route("c", ("c", "b"), "b", "a", PLENTY) is Verdict.FORWARD
    assert chain.route("b", ("b",), "b", "a", PLENTY) is Verdict.FORWARD
    assert chain.route("b", ("b", "a"), "a", "b", PLENTY) is Verdict.LOOP
    assert chain.tree_edges("a") == {("a", "b"), ("b", "c")}
    assert chain.tree_edges("b") == {("b", "a"), ("b", "c")}


def test_a_one_way_ring_goes_round_once_and_stops() -> None:
    ring = Topology(["a", "b", "c"], [("a", "b"), ("b", "c"), ("c", "a")])
    assert ring.route("a", ("a",), "a", "b", PLENTY) is Verdict.FORWARD
    assert ring.route("a", ("a", "b"), "b", "c", PLENTY) is Verdict.FORWARD
    assert ring.route("a", ("a", "b", "c"), "c", "a", PLENTY) is Verdict.LOOP
    for origin in "abc":
        assert flood(ring, origin) == Counter({r: 1 for r in "abc" if r != origin})


def test_a_two_way_ring_takes_the_shorter_way_round() -> None:
    names = ("a", "b", "c", "d", "e")
    ring = Topology(names, both_ways(*zip(names, names[1:] + names[:1], strict=True)))
    assert ring.tree_edges("a") == {("a", "b"), ("b", "c"), ("a", "e"), ("e", "d")}


def test_hub_and_spoke_routes_spoke_records_through_the_hub() -> None:
    hub = Topology(["hub", "s1", "s2", "s3"], both_ways(("hub", "s1"), ("hub", "s2"), ("hub", "s3")))
    assert hub.route("s1", ("s1",), "s1", "hub", PLENTY) is Verdict.FORWARD
    assert hub.route("s1", ("s1", "hub"), "hub", "s2", PLENTY) is Verdict.FORWARD
    assert hub.route("s1", ("s1", "hub"), "hub", "s1", PLENTY) is Verdict.LOOP
    assert flood(hub, "s1") == Counter({"hub": 1, "s2": 1, "s3": 1})


def test_ties_go_to_the_parent_whose_name_sorts_first() -> None:
    diamond = Topology(["a", "c", "b", "d"], [("a", "c"), ("a", "b"), ("c", "d"), ("b", "d")])
    assert diamond.tree_edges("a") == {("a", "b"), ("a", "c"), ("b", "d")}
    assert diamond.route("a", ("a", "c"), "c", "d", PLENTY) is Verdict.OFF_ROUTE


def test_ties_deeper_down_also_go_to_the_first_named_parent_not_the_first_found() -> None:
    # z is found before y (its parent b sorts before c), but y sorts first, so y is q's parent
    edges = [("a", "b"), ("a", "c"), ("b", "z"), ("c", "y"), ("z", "q"), ("y", "q")]
    topology = Topology(["a", "b", "c", "y", "z", "q"], edges)
    assert ("y", "q") in topology.tree_edges("a")
    assert topology.route("a", ("a", "b", "z"), "z", "q", PLENTY) is Verdict.OFF_ROUTE


def test_a_shorter_route_wins_over_a_first_named_longer_one() -> None:
    topology = Topology(["a", "b", "c", "z"], [("a", "b"), ("b", "c"), ("a", "z"), ("z", "c")] + [("a", "c")])
    assert ("a", "c") in topology.tree_edges("a")


def test_one_way_links_leave_regions_unreachable() -> None:
    chain = Topology(["a", "b", "c"], [("a", "b"), ("b", "c")])
    assert chain.reachable_from("a") == {"b", "c"}
    assert chain.reachable_from("c") == set()
    assert chain.unreachable() == {"b": {"a"}, "c": {"a", "b"}}
    assert flood(chain, "c") == Counter()


def test_a_region_without_links_reaches_nothing() -> None:
    topology = Topology(["a", "b", "lonely"], both_ways(("a", "b")))
    assert topology.tree_edges("lonely") == frozenset()
    assert topology.unreachable() == {"a": {"lonely"}, "b": {"lonely"}, "lonely": {"a", "b"}}


# --- the guards -------------------------------------------------------------


def test_a_record_from_an_unknown_origin_is_not_forwarded() -> None:
    pair = Topology(["us", "eu"], both_ways(("us", "eu")))
    assert pair.route("ap", ("ap", "us"), "us", "eu", PLENTY) is Verdict.UNKNOWN_ORIGIN


def test_the_loop_check_comes_before_the_origin_check() -> None:
    pair = Topology(["us", "eu"], both_ways(("us", "eu")))
    assert pair.route("ap", ("ap", "eu", "us"), "us", "eu", PLENTY) is Verdict.LOOP


def test_a_link_outside_the_topology_is_off_route() -> None:
    pair = Topology(["us", "eu", "ap"], both_ways(("us", "eu")))
    assert pair.route("us", ("us",), "us", "ap", PLENTY) is Verdict.OFF_ROUTE


@pytest.mark.parametrize(
    ("path", "max_hops", "verdict"),
    [
        (("a",), 0, Verdict.MAX_HOPS),
        (("a",), 1, Verdict.FORWARD),
        (("a", "b"), 1, Verdict.MAX_HOPS),
        (("a", "b"), 2, Verdict.FORWARD),
    ],
)
def test_max_hops_counts_the_links_crossed_including_this_one(
    path: tuple[str, ...], max_hops: int, verdict: Verdict
) -> None:
    chain = Topology(["a", "b", "c"], [("a", "b"), ("b", "c")])
    assert chain.route("a", path, path[-1], "b" if len(path) == 1 else "c", max_hops) is verdict


def test_max_hops_never_lets_a_path_outgrow_its_header() -> None:
    names = tuple(f"r{i:02d}" for i in range(MAX_PATH + 1))
    chain = Topology(names, zip(names, names[1:], strict=False))
    assert chain.route("r00", names[:-2], names[-3], names[-2], 100) is Verdict.FORWARD
    assert chain.route("r00", names[:-1], names[-2], names[-1], 100) is Verdict.MAX_HOPS


# --- validation and the rest of the API -------------------------------------


@pytest.mark.parametrize(
    ("regions", "edges", "message"),
    [
        (["us", "eu"], [("us", "us")], "into itself"),
        (["us", "eu"], [("us", "eu"), ("us", "eu")], "more than once"),
        (["us", "eu"], [("us", "ap")], "'ap', which is not registered"),
        (["us", "eu"], [("ap", "eu")], "'ap', which is not registered"),
        (["us", "EU"], [], "'EU' is not a region name"),
        (["us", ""], [], "'' is not a region name"),
        (["us", "eu", "us"], [], "'us' is listed more than once"),
    ],
)
def test_invalid_topologies_are_refused_with_a_clear_message(
    regions: list[str], edges: list[Edge], message: str
) -> None:
    with pytest.raises(TopologyError, match=message):
        Topology(regions, edges)


def test_topology_errors_are_amity_errors() -> None:
    assert issubclass(TopologyError, AmityError)


def test_asking_for_an_unknown_origin_tree_names_the_known_regions() -> None:
    pair = Topology(["us", "eu"], both_ways(("us", "eu")))
    with pytest.raises(TopologyError, match="'ap' is not part of this topology; known: eu, us"):
        pair.tree_edges("ap")
    with pytest.raises(TopologyError):
        pair.reachable_from("ap")


def test_an_empty_topology_is_valid_and_routes_nothing() -> None:
    empty = Topology([], [])
    assert empty.unreachable() == {}
    assert empty.route("us", ("us",), "us", "eu", PLENTY) is Verdict.UNKNOWN_ORIGIN


def test_topologies_compare_by_regions_and_links() -> None:
    assert Topology(["a", "b"], [("a", "b")]) == Topology(("b", "a"), iter([("a", "b")]))
    assert Topology(["a", "b"], [("a", "b")]) != Topology(["a", "b"], [("b", "a")])
    assert len({Topology(["a", "b"], []), Topology(["b", "a"], [])}) == 1
    assert repr(Topology(["b", "a"], [("b", "a")])) == "Topology(regions=['a', 'b'], links=[b->a])"


def test_topology_cannot_be_changed_after_construction() -> None:
    topology = Topology(["a", "b"], [("a", "b")])
    with pytest.raises(AttributeError):
        topology.regions = frozenset()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        topology.extra = 1  # type: ignore[attr-defined]


def test_every_verdict_is_a_stable_metric_label() -> None:
    assert [v.value for v in Verdict] == ["forward", "loop", "max-hops", "off-route", "unknown-origin"]


def test_the_tree_of_a_mesh_is_the_star_of_direct_links() -> None:
    for names in permutations(("a", "b", "c")):
        topology = mesh(names)
        assert topology.tree_edges(names[0]) == {(names[0], r) for r in names[1:]}
