"""Spreading links over live workers."""

from hypothesis import given
from hypothesis import strategies as st

from amity.coordinator.assignment import owners, spread

names = st.text(alphabet="abcdefgh-0123", min_size=1, max_size=8)
link_sets = st.sets(names, max_size=40)
worker_sets = st.sets(names, min_size=1, max_size=8)


@given(link_sets, worker_sets)
def test_every_link_runs_exactly_once_on_a_given_worker(links: set[str], workers: set[str]) -> None:
    assignment = spread(links, workers)
    assert set(assignment) == workers
    held = [link for ls in assignment.values() for link in ls]
    assert sorted(held) == sorted(links)


@given(link_sets, worker_sets, st.dictionaries(names, names))
def test_loads_differ_by_at_most_one(links: set[str], workers: set[str], previous: dict[str, str]) -> None:
    loads = [len(ls) for ls in spread(links, workers, previous).values()]
    assert max(loads) - min(loads) <= 1


@given(link_sets, worker_sets)
def test_the_answer_does_not_depend_on_input_order(links: set[str], workers: set[str]) -> None:
    assert spread(sorted(links), sorted(workers)) == spread(sorted(links, reverse=True), sorted(workers, reverse=True))


@given(link_sets, worker_sets)
def test_recomputing_with_the_same_workers_moves_nothing(links: set[str], workers: set[str]) -> None:
    first = spread(links, workers)
    assert spread(links, workers, owners(first)) == first


@given(link_sets, st.sets(names, min_size=2, max_size=8), st.data())
def test_a_worker_leaving_moves_only_its_own_links(links: set[str], workers: set[str], data: st.DataObject) -> None:
    before = owners(spread(links, workers))
    gone = data.draw(st.sampled_from(sorted(workers)))
    after = owners(spread(links, workers - {gone}, before))
    assert {link for link in links if before[link] != after[link]} == {link for link in links if before[link] == gone}


@given(link_sets, worker_sets, names)
def test_a_worker_joining_takes_only_its_share(links: set[str], workers: set[str], new: str) -> None:
    before = owners(spread(links, workers))
    after_assignment = spread(links, workers | {new}, before)
    after = owners(after_assignment)
    moved = {link for link in links if before[link] != after[link]}
    assert moved == (set(after_assignment[new]) if new not in workers else set())


def test_no_workers_means_no_assignment() -> None:
    assert spread(["us-to-eu"], []) == {}


def test_no_links_gives_every_worker_nothing() -> None:
    assert spread([], ["w1", "w2"]) == {"w1": (), "w2": ()}


def test_a_link_previously_on_a_dead_worker_goes_to_a_live_one() -> None:
    assert owners(spread(["us-to-eu"], ["w2"], {"us-to-eu": "w1"})) == {"us-to-eu": "w2"}
