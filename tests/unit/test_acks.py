"""Offsets are committable only over a prefix of fully acknowledged batches."""

from amity.mirror.acks import AckTracker


def sealed(tracker: AckTracker, positions: dict, writes: int):
    batch = tracker.open(positions)
    for _ in range(writes):
        batch.sent()
    batch.sealed = True
    return batch


def test_nothing_is_committable_until_every_write_of_the_batch_is_acknowledged() -> None:
    tracker = AckTracker()
    batch = sealed(tracker, {("t", 0): 10}, writes=2)
    batch.delivered(None, None)
    assert tracker.pop_committable() == {}
    batch.delivered(None, None)
    assert tracker.pop_committable() == {("t", 0): 10}
    assert tracker.pop_committable() == {}


def test_a_later_batch_acknowledged_first_waits_for_the_earlier_one() -> None:
    tracker = AckTracker()
    first = sealed(tracker, {("t", 0): 10}, writes=1)
    second = sealed(tracker, {("t", 0): 20, ("t", 1): 5}, writes=1)
    second.delivered(None, None)
    assert tracker.pop_committable() == {}
    first.delivered(None, None)
    assert tracker.pop_committable() == {("t", 0): 20, ("t", 1): 5}


def test_a_failed_write_blocks_commits_and_is_reported() -> None:
    tracker = AckTracker()
    batch = sealed(tracker, {("t", 0): 10}, writes=1)
    batch.delivered("broker down", "msg")
    assert tracker.pop_committable() == {}
    assert tracker.failed() == [("broker down", "msg")]


def test_a_batch_with_only_drops_commits_at_once() -> None:
    tracker = AckTracker()
    sealed(tracker, {("t", 3): 7}, writes=0)
    assert tracker.pop_committable() == {("t", 3): 7}


def test_an_unsealed_batch_is_not_committable_even_with_no_pending_writes() -> None:
    tracker = AckTracker()
    batch = tracker.open({("t", 0): 1})
    batch.sent()
    batch.delivered(None, None)
    assert tracker.pop_committable() == {}
    assert tracker.in_flight == 0
