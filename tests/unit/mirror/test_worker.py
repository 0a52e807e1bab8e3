"""The worker process's interpreter settings."""

import gc

import pytest

from amity.mirror.settings import MirrorSettings
from amity.mirror.worker import tune_collector


@pytest.fixture
def collector():
    """Put the test process's collector back as it was."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_collector_runs_every_threshold_allocations_and_skips_startup_objects(collector) -> None:
    tune_collector(123_456)
    assert gc.get_threshold()[0] == 123_456
    assert gc.get_freeze_count() > 0, "objects alive at startup are frozen out of every collection"


def test_the_threshold_is_a_setting_with_a_floor_at_pythons_default(monkeypatch) -> None:
    monkeypatch.setenv("AMITY_MIRROR_GC_THRESHOLD", "80000")
    assert MirrorSettings().gc_threshold == 80_000
    monkeypatch.setenv("AMITY_MIRROR_GC_THRESHOLD", "10")
    with pytest.raises(ValueError):
        MirrorSettings()
