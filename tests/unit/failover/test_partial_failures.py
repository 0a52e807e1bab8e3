"""A checkpointing round goes on past a group whose progress cannot be read; a move whose offsets are committed
warns about what it could not record, and never reports itself refused."""

from types import SimpleNamespace

import pytest
import redis

from amity.failover.checkpointer import _Exporter
from amity.failover.checkpoints import Checkpoint
from amity.failover.errors import RegionUnreachable
from amity.failover.operation import _commit, _release
from amity.failover.routes import Route
from amity.failover.translation import Progress


class _Positions:
    def progress(self, topic: str, committed: dict[int, int], partitions: int) -> Progress:
        if topic == "offline":
            raise RegionUnreachable("region us did not return offline[0] from offset 0 within 10s")
        return Progress({("us", topic, 0): committed[0]})


class _Store:
    def __init__(self) -> None:
        self.saved: list = []

    def owned(self, group: str, topic: str) -> None:
        return None

    def save(self, checkpoint) -> None:
        self.saved.append((checkpoint.group, checkpoint.topic))


def test_a_group_whose_progress_fails_is_skipped_and_the_next_one_checkpointed() -> None:
    exporter = object.__new__(_Exporter)
    remote = SimpleNamespace(store=_Store())
    exporter.owner = SimpleNamespace(exported=0, sync=False)
    exporter.here = SimpleNamespace(region=SimpleNamespace(name="us"), store=_Store(), positions=_Positions())
    exporter.progress = {}
    exporter._remote = lambda name: remote
    for group, topic in (("a", "offline"), ("b", "orders")):
        exporter.export(group, topic, {0: 5}, 1, [Route("us", topic, "eu", topic)])
    assert remote.store.saved == [("b", "orders")] and exporter.owner.exported == 1


class _Saved:
    def __init__(self) -> None:
        self.checkpoints: list = []

    def save(self, checkpoint) -> None:
        self.checkpoints.append(checkpoint)


def test_the_region_left_keeps_the_checkpoint_a_move_back_needs_and_warns_when_its_topic_is_gone() -> None:
    admin = SimpleNamespace(reachable=lambda: True, partitions=lambda topic: None,
                            committed=lambda group, topic, partitions: pytest.fail("asked for no partitions"))
    store, warnings = _Saved(), []
    moved = Checkpoint.of("us", "g", "orders", {0: 7}, Progress({("eu", "orders", 0): 6}))
    _release(SimpleNamespace(admin=admin, store=store, region=SimpleNamespace(name="eu")), "g", "orders", moved,
             warnings)
    assert store.checkpoints == [moved]
    assert warnings == ["orders has no partitions in eu now, so the group's offsets there are not marked for syncing"]


def test_a_move_committed_but_not_recorded_warns_instead_of_saying_it_was_refused() -> None:
    def down(*args: object) -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    committed: list = []
    there = SimpleNamespace(region=SimpleNamespace(name="eu", redis="redis://:pw@127.0.0.1:6379/0"),
                            admin=SimpleNamespace(commit=lambda *args: committed.append(args)),
                            store=SimpleNamespace(mark_owned=down, save_moved=down))
    here = SimpleNamespace(admin=SimpleNamespace(reachable=lambda: False), region=SimpleNamespace(name="us"))
    warnings: list[str] = []
    _commit("g", here, "orders", there, "orders", {0: 7}, Progress({}), warnings)
    assert committed == [("g", "orders", {0: 7})]
    assert len(warnings) == 1 and warnings[0].startswith("the offsets are committed in eu, but recording the move")
    assert ":pw@" not in warnings[0]
