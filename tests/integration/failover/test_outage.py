"""A real outage: region af's Kafka is killed, its group fails over to eu, then fails back once af returns.

af is a spare region started for these tests (never one of the shared us, eu,
ap), killed by pid and restarted with its data kept; its Redis restarts empty,
as a region's would after a crash without persistence, so failback also shows
the index being rebuilt. Mirrors and the checkpointer run as processes.

Every test measures, across all the group's runs in both regions, the records
never processed (must be 0) and the records processed twice (target 0), and
checks the duplicates against the count each translation predicted.
"""

import threading
import time
import uuid
from pathlib import Path

import pytest

from amity.dev.environment import DevEnvironment
from amity.errors import DevEnvironmentError
from amity.failover.filter import ProcessedFilter
from amity.regions import Region
from tests.integration.failover.support import (
    CheckpointerProcess, again, amity, checkpoint, committed, consume, duplicates, move,
)
from tests.support import cluster
from tests.support.cluster import frozen, kill_kafka, region_pid
from tests.support.kafka import create_topic, produce, read_all
from tests.support.mirror import MirrorProcess, wait_for

SPARE = "af"
PARTITIONS = 3


@pytest.fixture
def spare(regions: dict[str, Region]) -> Region:
    """Region af, started (or restarted) for a test that kills it; the session's teardown stops it."""
    state = DevEnvironment(cluster.test_settings()).up([SPARE])[SPARE]
    return Region(name=SPARE, bootstrap=state.bootstrap, redis=state.redis)


def restart(region: str, attempts: int = 4) -> None:
    """Start the killed region again, data kept.

    A client that keeps reconnecting to the dead broker may still hold a
    socket on the broker's port for a moment, so the start is retried.
    """
    for attempt in range(attempts):
        try:
            DevEnvironment(cluster.test_settings()).up([region])
            return
        except DevEnvironmentError as exc:
            print(f"restart of {region} failed (attempt {attempt + 1}): {str(exc).splitlines()[0]}")
            time.sleep(5)
    raise AssertionError(f"{region} did not restart in {attempts} attempts")


def records(prefix: str, start: int, stop: int) -> list[tuple[bytes, bytes]]:
    return [(f"k{n % 23}".encode(), f"{prefix}-{n}".encode()) for n in range(start, stop)]


def values(region: Region, topic: str) -> set[bytes]:
    return {m.value() for m in read_all(region.bootstrap, topic)}


def holds(region: Region, topic: str, count: int) -> bool:
    return len(read_all(region.bootstrap, topic)) >= count


def wait_for_checkpoint(destination: Region, source: Region, group: str, topic: str) -> None:
    """Until the destination holds a checkpoint of the group's current offsets in the source."""
    offsets = committed(source, group, topic, PARTITIONS)
    wait_for(lambda: (found := checkpoint(destination, source.name, group, topic)) is not None
             and found.committed == offsets, timeout_s=60, message=f"checkpoint of {offsets}")


def failback_when_ready(group: str, topic: str, config: Path) -> dict:
    """Fail back as soon as the returned region answers and its index is rebuilt (its Redis restarted empty)."""
    wait_for(lambda: amity("failback", "--group", group, "--topic", topic, "--from", SPARE, "--to", "eu",
                           "--config", str(config), "--dry-run").returncode == 0,
             timeout_s=120, interval_s=2, message="failback possible")
    return move("failback", group, topic, SPARE, "eu", config)


def redelivered(report: dict) -> int:
    assert all(p["redelivered_exact"] for p in report["partitions"])
    return sum(p["redelivered"] for p in report["partitions"])


@pytest.mark.timeout(900)
@pytest.mark.parametrize("naming", ["identity", "prefix"])
def test_active_passive_failover_and_failback(regions: dict[str, Region], spare: Region, topic: str, naming: str,
                                              tmp_path: Path) -> None:
    af, eu = spare, regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    copy = topic if naming == "identity" else f"{SPARE}.{topic}"
    create_topic(af.bootstrap, topic, partitions=PARTITIONS)
    links = [{"source": SPARE, "destination": "eu", "include": [topic], "naming": naming}]
    with MirrorProcess(tmp_path, {SPARE: af, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        produce(af.bootstrap, topic, records("af", 0, 3000))
        wait_for(lambda: holds(eu, copy, 3000), timeout_s=90, message="3000 in eu")
        in_af = consume(af, group, topic, limit=1700)
        produce(af.bootstrap, topic, records("af", 3000, 4000))
        wait_for(lambda: holds(eu, copy, 4000), timeout_s=90, message="4000 in eu")
        wait_for_checkpoint(eu, af, group, topic)

        kill_kafka(SPARE)
        over = move("failover", group, topic, SPARE, "eu", mirror.config)
        in_eu = consume(eu, group, copy)
        lost = values(eu, copy) - set(in_af) - set(in_eu)
        print(f"\n[{naming}] failover: processed {len(in_af)} in af, {len(in_eu)} in eu; lost {len(lost)}, "
              f"duplicates {duplicates(in_af, in_eu)} (predicted {redelivered(over)})")
        assert over["basis"] == "checkpoint"
        assert lost == set()
        assert duplicates(in_af, in_eu) == redelivered(over) == 0

        restart(SPARE)
        back = failback_when_ready(group, topic, mirror.config)
        produce(af.bootstrap, topic, records("af", 4000, 4500))
        in_af_again = consume(af, group, topic)
        print(f"[{naming}] failback: processed {len(in_af_again)} in af; duplicates "
              f"{again(in_af + in_eu, in_af_again)} (predicted {redelivered(back)})")
        assert back["basis"] == "live"
        assert sorted(in_af_again) == sorted(value for _key, value in records("af", 4000, 4500))
        assert again(in_af + in_eu, in_af_again) == redelivered(back) == 0


@pytest.mark.timeout(900)
def test_active_active_failover_and_failback(regions: dict[str, Region], spare: Region, topic: str,
                                             tmp_path: Path) -> None:
    af, eu = spare, regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    for region in (af, eu):
        create_topic(region.bootstrap, topic, partitions=PARTITIONS)
    links = [{"source": SPARE, "destination": "eu", "include": [topic]},
             {"source": "eu", "destination": SPARE, "include": [topic]}]
    with MirrorProcess(tmp_path, {SPARE: af, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        _produce_in_both(af, eu, topic, 0, 2000)
        wait_for(lambda: holds(af, topic, 4000) and holds(eu, topic, 4000), timeout_s=120, message="4000 in both")
        in_af = consume(af, group, topic, limit=2100)
        _produce_in_both(af, eu, topic, 2000, 3000)
        wait_for(lambda: holds(af, topic, 6000) and holds(eu, topic, 6000), timeout_s=120, message="6000 in both")
        wait_for_checkpoint(eu, af, group, topic)

        kill_kafka(SPARE)
        over = move("failover", group, topic, SPARE, "eu", mirror.config)
        skipped: list[bytes] = []
        in_eu = consume(eu, group, topic, skip=ProcessedFilter.load(eu, group, topic).already_processed,
                        skipped=skipped)
        lost = values(eu, topic) - set(in_af) - set(in_eu)
        print(f"\n[active-active] failover: processed {len(in_af)} in af, {len(in_eu)} in eu; lost {len(lost)}; "
              f"re-delivered by offsets {len(skipped)} (predicted {redelivered(over)}), all skipped by the filter: "
              f"duplicates {duplicates(in_af, in_eu)}")
        assert over["basis"] == "checkpoint"
        assert lost == set()
        assert len(skipped) == redelivered(over)
        assert set(skipped) <= set(in_af)
        assert duplicates(in_af, in_eu) == 0

        produce(eu.bootstrap, topic, records("eu", 3000, 3500))
        in_eu += consume(eu, group, topic)
        restart(SPARE)
        wait_for(lambda: holds(af, topic, 6500), timeout_s=180, message="eu's outage records in af")
        back = failback_when_ready(group, topic, mirror.config)
        _produce_in_both(af, eu, topic, 3500, 3700)
        wait_for(lambda: holds(af, topic, 6900), timeout_s=120, message="new records in af")
        in_af_again = consume(af, group, topic)
        everything = values(af, topic)
        lost = everything - set(in_af) - set(in_eu) - set(in_af_again)
        print(f"[active-active] failback: processed {len(in_af_again)} in af; lost {len(lost)}, duplicates "
              f"{again(in_af + in_eu, in_af_again)} (predicted {redelivered(back)})")
        assert len(everything) == 6900
        assert back["basis"] == "live"
        assert lost == set()
        assert again(in_af + in_eu, in_af_again) == redelivered(back)


def test_failover_from_a_region_that_stops_answering(regions: dict[str, Region], spare: Region, topic: str,
                                                     tmp_path: Path) -> None:
    """A region cut off answers nothing, where a crashed one refuses connections: the failover gives up on it
    after its probe timeout and moves the group from the checkpoint, nothing lost, nothing processed twice."""
    af, eu = spare, regions["eu"]
    group = f"g-{uuid.uuid4().hex[:8]}"
    create_topic(af.bootstrap, topic, partitions=PARTITIONS)
    links = [{"source": SPARE, "destination": "eu", "include": [topic]}]
    with MirrorProcess(tmp_path, {SPARE: af, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, group):
        produce(af.bootstrap, topic, records("af", 0, 3000))
        wait_for(lambda: holds(eu, topic, 3000), timeout_s=90, message="3000 in eu")
        in_af = consume(af, group, topic, limit=1700)
        wait_for_checkpoint(eu, af, group, topic)
        with frozen(region_pid(SPARE, "kafka"), region_pid(SPARE, "redis")):
            over = move("failover", group, topic, SPARE, "eu", mirror.config)
            in_eu = consume(eu, group, topic)
    lost = values(eu, topic) - set(in_af) - set(in_eu)
    assert over["basis"] == "checkpoint"
    assert any(f"{SPARE} is unreachable" in warning for warning in over["warnings"]), over["warnings"]
    assert lost == set()
    assert duplicates(in_af, in_eu) == redelivered(over) == 0


def _produce_in_both(af: Region, eu: Region, topic: str, start: int, stop: int) -> None:
    """Producers in both regions at once, so each region interleaves local and mirrored records its own way."""
    threads = [threading.Thread(target=produce, args=(region.bootstrap, topic, records(name, start, stop)))
               for name, region in (("af", af), ("eu", eu))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
