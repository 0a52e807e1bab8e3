"""The same failover, translated by MirrorMaker 2's checkpoints and by Amity: records processed twice, or never.

Both tools replicate us -> eu with prefixed names (MM2's default policy) and
keep the group's offsets in eu in sync while it is idle there (MM2:
sync.group.offsets, every second instead of its default minute). The group
processes part of the topic in us; it then resumes in eu from whatever each
tool synced. MM2 runs from the jars in .cache/kafka-4.3.1, through the
benchmark's launcher (amity.bench.mm2) with checkpoints switched on. The
test asserts that Amity re-delivers and loses nothing and that MM2, when it
synced, re-delivered something; both tools' figures are printed. When MM2
synced nothing in time (once in a CI run), what MM2 logged is printed instead.
"""

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from amity.bench.mm2 import MirrorMaker2
from amity.bench.scenarios import Flow
from amity.dev.settings import DevSettings
from amity.regions import Region
from tests.integration.failover.support import CheckpointerProcess, committed, consume, duplicates
from tests.support.kafka import create_topic, produce, read_all, unique_topic
from tests.support.mirror import MirrorProcess, wait_for

PARTITIONS = 3
RECORDS = 3000
PROCESSED_IN_US = 1700
SYNC_TIMEOUT_S = 240
WORDS_ON_SYNC = ("consumer group", "checkpointing", "offset sync", "idle consumer", "ERROR")  # MM2's log lines


class CheckpointingMirrorMaker2(MirrorMaker2):
    """MirrorMaker 2 as it is run for failover: checkpoints and group offset sync on, for `groups`."""

    def __init__(self, *args, groups: str, **kwargs) -> None:  # noqa: ANN002, ANN003 - the launcher's own arguments
        super().__init__(*args, **kwargs)
        self.groups = groups

    def properties(self) -> dict[str, str]:
        return {**super().properties(), "groups": self.groups, "emit.checkpoints.enabled": "true",
                "emit.checkpoints.interval.seconds": "1", "sync.group.offsets.enabled": "true",
                "sync.group.offsets.interval.seconds": "1", "refresh.groups.enabled": "true",
                "refresh.groups.interval.seconds": "1", "refresh.topics.interval.seconds": "1"}


def records() -> list[tuple[bytes, bytes]]:
    return [(f"k{n % 23}".encode(), f"r-{n}".encode()) for n in range(RECORDS)]


class NotSynced(AssertionError):
    """The tool synced no stable offsets for the group into eu in SYNC_TIMEOUT_S."""


def resume_in_eu(us: Region, eu: Region, group: str, topic: str, copy: str,
                 tool_log: Callable[[], str] = lambda: "") -> tuple[int, int, int]:
    """Process part of `topic` in us, wait for the synced offsets in eu, resume there: (processed, duplicates, lost).

    When the synced offsets do not come, the failure carries `tool_log()`: what the tool said it did.
    """
    produce(us.bootstrap, topic, records())
    wait_for(lambda: len(read_all(eu.bootstrap, copy)) == RECORDS, timeout_s=180, message=f"{copy} in eu")
    in_us = consume(us, group, topic, limit=PROCESSED_IN_US)
    source = set(committed(us, group, topic, PARTITIONS))
    try:
        wait_for(lambda: _stable(eu, group, copy, source), timeout_s=SYNC_TIMEOUT_S, interval_s=3,
                 message=f"{group} synced into eu")
    except AssertionError as timeout:
        raise NotSynced(f"{timeout}; in eu now {committed(eu, group, copy, PARTITIONS)}, in us {source}\n"
                        f"{tool_log()}") from None
    in_eu = consume(eu, group, copy)
    lost = {m.value() for m in read_all(eu.bootstrap, copy)} - set(in_us) - set(in_eu)
    return len(in_us), duplicates(in_us, in_eu), len(lost)


_last: dict[tuple[str, str], dict[int, int]] = {}


def _stable(region: Region, group: str, topic: str, partitions: set[int]) -> bool:
    """True once the group has offsets in `region` on `partitions` (those it committed in the source: MM2 syncs
    no others) and they did not move since the last look."""
    now = committed(region, group, topic, PARTITIONS)
    before = _last.get((group, topic))
    _last[(group, topic)] = now
    return partitions <= set(now) and now == before


def _said(mm2: MirrorMaker2) -> str:
    """MirrorMaker 2's last log lines on groups, checkpoints and offset syncs, and its errors."""
    lines = mm2.log_path.read_text(errors="replace").splitlines() if mm2.log_path.exists() else []
    return "\n".join([line for line in lines if any(word in line for word in WORDS_ON_SYNC)][-60:])


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_amity_translates_exactly_where_mirrormaker2_rewinds(regions: dict[str, Region], tmp_path: Path) -> None:
    us, eu = regions["us"], regions["eu"]
    topics = {tool: unique_topic(tool) for tool in ("mm2", "amity")}
    for topic in topics.values():
        create_topic(us.bootstrap, topic, partitions=PARTITIONS)

    mm2_group = f"g-mm2-{uuid.uuid4().hex[:6]}"
    mm2 = CheckpointingMirrorMaker2(tmp_path / "mm2", DevSettings().jar_dir, {"us": us.bootstrap, "eu": eu.bootstrap},
                                    (Flow("us", "eu"),), [topics["mm2"]], False, uuid.uuid4().hex[:8], groups=mm2_group)
    mm2.start()
    try:
        mm2_result = resume_in_eu(us, eu, mm2_group, topics["mm2"], f"us.{topics['mm2']}", lambda: _said(mm2))
    except NotSynced as missing:
        mm2_result = None
        print(f"\nMirrorMaker 2: {missing}")
    finally:
        mm2.stop()

    amity_group = f"g-amity-{uuid.uuid4().hex[:6]}"
    links = [{"source": "us", "destination": "eu", "include": [topics["amity"]], "naming": "prefix"}]
    with MirrorProcess(tmp_path, {"us": us, "eu": eu}, links) as mirror, \
            CheckpointerProcess(tmp_path, mirror.config, amity_group):
        amity_result = resume_in_eu(us, eu, amity_group, topics["amity"], f"us.{topics['amity']}")

    if mm2_result is not None:
        print(f"\nMirrorMaker 2: processed {mm2_result[0]} in us; in eu {mm2_result[1]} duplicates, "
              f"{mm2_result[2]} lost")
    print(f"Amity:         processed {amity_result[0]} in us; in eu {amity_result[1]} duplicates, "
          f"{amity_result[2]} lost")
    assert amity_result[1:] == (0, 0)
    assert mm2_result is None or mm2_result[1] > 0, \
        "MirrorMaker 2 re-delivered nothing: docs/failover.md is out of date"
