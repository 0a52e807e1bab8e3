"""The topology view: link states and which regions cannot hear which."""

from amity.coordinator.schemas.links import LinkPublic
from amity.coordinator.schemas.regions import RegionHealth, Status
from amity.coordinator.store.assignment import AssignmentState
from amity.coordinator.topology_view import topology, unreachable
from amity.stats import LinkHealth


def link(source: str, destination: str, paused: bool = False) -> LinkPublic:
    return LinkPublic(id=f"{source}-to-{destination}", source=source, destination=destination, paused=paused)


def pairs(found: list) -> set[tuple[str, str]]:
    return {(pair.source, pair.destination) for pair in found}


def test_a_chain_reaches_forward_only() -> None:
    assert pairs(unreachable(["a", "b", "c"], [("a", "b"), ("b", "c")])) == {("b", "a"), ("c", "a"), ("c", "b")}


def test_a_mesh_reaches_everyone() -> None:
    regions = ["a", "b", "c"]
    assert unreachable(regions, [(x, y) for x in regions for y in regions if x != y]) == []


def test_two_links_over_one_pair_count_once() -> None:
    assert pairs(unreachable(["a", "b"], [("a", "b"), ("a", "b")])) == {("b", "a")}


def test_link_states() -> None:
    links = {one.id: one for one in [link("us", "eu"), link("eu", "us", paused=True), link("us", "ap"),
                                     link("ap", "us")]}
    state = AssignmentState(generation=3, workers={"w1": ["us-to-eu", "us-to-ap"], "dead": ["ap-to-us"]})
    health = {"us": RegionHealth(status=Status.UP), "eu": RegionHealth(status=Status.UP),
              "ap": RegionHealth(status=Status.DOWN)}
    view = topology(["ap", "eu", "us"], health, links, state, ["w1"], [])
    assert {e.id: (e.state.value, e.worker) for e in view.links} == {
        "us-to-eu": ("running", "w1"), "eu-to-us": ("paused", None), "us-to-ap": ("degraded", "w1"),
        "ap-to-us": ("unassigned", None)}
    assert pairs(view.unreachable) == {("eu", "ap"), ("eu", "us")}
    assert view.generation == 3


def test_a_link_its_owner_reports_failing_is_retrying_and_says_why() -> None:
    links = {one.id: one for one in [link("us", "eu"), link("eu", "us"), link("us", "ap")]}
    state = AssignmentState(generation=1, workers={"w1": ["us-to-eu", "us-to-ap"], "w2": ["eu-to-us"]})
    health = {name: RegionHealth(status=Status.UP) for name in ("us", "eu")} | {"ap": RegionHealth(status=Status.DOWN)}
    reports = {
        "w1": {"us-to-eu": LinkHealth(link="us-to-eu", healthy=False, problem="Redis of eu: Timeout"),
               "us-to-ap": LinkHealth(link="us-to-ap", healthy=False, problem="")},
        "w2": {"eu-to-us": LinkHealth(link="eu-to-us", healthy=True)},
        "w3": {"eu-to-us": LinkHealth(link="eu-to-us", healthy=False, problem="an old owner's last word")},
    }
    view = topology(["ap", "eu", "us"], health, links, state, ["w1", "w2", "w3"], [], reports)
    assert {e.id: (e.state.value, e.problem) for e in view.links} == {
        "us-to-eu": ("retrying", "Redis of eu: Timeout"),
        "eu-to-us": ("running", None),
        "us-to-ap": ("degraded", "failing"),
    }
