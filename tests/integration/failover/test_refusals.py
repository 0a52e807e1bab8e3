"""Every refusal of `amity failover`: one line on stderr, exit status 1, nothing committed."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from amity.regions import Region
from tests.integration.failover.support import amity, committed, consume, member
from tests.support.kafka import create_topic, produce
from tests.support.mirror import free_port


@pytest.fixture
def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def regions_file(tmp_path: Path, regions: dict[str, Region]) -> Path:
    path = tmp_path / "regions.json"
    path.write_text(json.dumps({name: {"bootstrap": r.bootstrap, "redis": r.redis} for name, r in regions.items()}))
    return path


def mirror_config(tmp_path: Path, regions: dict[str, Region], links: list[dict]) -> Path:
    path = tmp_path / "mirror.yaml"
    path.write_text(yaml.safe_dump({"regions": {n: {"bootstrap": r.bootstrap, "redis": r.redis}
                                                for n, r in regions.items()}, "links": links}))
    return path


def refused(*args: str) -> str:
    done = amity(*args)
    assert done.returncode == 1, f"exit {done.returncode}: {done.stdout}{done.stderr}"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def consumed(regions: dict[str, Region], topic: str, group: str) -> str:
    """`topic` in us with 200 records, 120 of them processed by `group`."""
    create_topic(regions["us"].bootstrap, topic, partitions=1)
    produce(regions["us"].bootstrap, topic, [(None, f"r{n}".encode()) for n in range(200)])
    consume(regions["us"], group, topic, limit=120)
    return topic


@pytest.fixture
def member_in_eu(regions: dict[str, Region], topic: str, group: str) -> Iterator[None]:
    """A live consumer of `group` in eu for the duration of a test."""
    create_topic(regions["eu"].bootstrap, topic, partitions=1)
    with member(regions["eu"], group, topic):
        yield


def test_group_active_in_the_destination(regions, tmp_path, consumed, group, member_in_eu) -> None:
    line = refused("failover", "-g", group, "-t", consumed, "--from", "us", "--to", "eu", "--no-link-check",
                   "--regions-file", str(regions_file(tmp_path, regions)))
    assert f"group {group} has 1 active member(s) in eu: stop its consumers there first" in line


def test_unknown_group(regions, tmp_path, consumed) -> None:
    create_topic(regions["eu"].bootstrap, consumed, partitions=1)
    line = refused("failover", "-g", "nobody-" + uuid.uuid4().hex[:6], "-t", consumed, "--from", "us", "--to", "eu",
                   "--no-link-check", "--regions-file", str(regions_file(tmp_path, regions)))
    assert "has no committed offset on" in line and "in us" in line


def test_no_link_between_the_regions(regions, tmp_path, consumed, group) -> None:
    config = mirror_config(tmp_path, regions, [{"source": "us", "destination": "ap", "include": [consumed]},
                                               {"source": "us", "destination": "eu", "include": ["other.*"]}])
    line = refused("failover", "-g", group, "-t", consumed, "--from", "us", "--to", "eu", "--config", str(config))
    assert line.endswith(f"no link us -> eu replicates {consumed}: eu has no copy of it to move the group to")


def test_links_unknown_without_a_config(regions, tmp_path, consumed, group) -> None:
    line = refused("failover", "-g", group, "-t", consumed, "--from", "us", "--to", "eu",
                   "--regions-file", str(regions_file(tmp_path, regions)))
    assert "links between regions are unknown" in line and "--no-link-check" in line


def test_no_index_and_no_scan(regions, tmp_path, consumed, group) -> None:
    create_topic(regions["eu"].bootstrap, consumed, partitions=1)
    line = refused("failover", "-g", group, "-t", consumed, "--from", "us", "--to", "eu", "--no-link-check",
                   "--regions-file", str(regions_file(tmp_path, regions)))
    assert f"no offset index for {consumed} in us's Redis" in line and "--scan" in line
    assert committed(regions["eu"], group, consumed, 1) == {}


def test_source_down_without_a_checkpoint(regions, tmp_path, topic, group) -> None:
    create_topic(regions["eu"].bootstrap, topic, partitions=1)
    dead = Region(name="sa", bootstrap=f"127.0.0.1:{free_port()}", redis=regions["eu"].redis)
    line = refused("failover", "-g", group, "-t", topic, "--from", "sa", "--to", "eu", "--no-link-check",
                   "--regions-file", str(regions_file(tmp_path, {"sa": dead, "eu": regions["eu"]})))
    assert f"sa is unreachable and eu's Redis has no checkpoint of group {group}" in line
    assert "amity checkpoint run" in line


def test_destination_down(regions, tmp_path, consumed, group) -> None:
    dead = Region(name="sa", bootstrap=f"127.0.0.1:{free_port()}", redis=regions["eu"].redis)
    line = refused("failover", "-g", group, "-t", consumed, "--from", "us", "--to", "sa", "--no-link-check",
                   "--regions-file", str(regions_file(tmp_path, {"us": regions["us"], "sa": dead})))
    assert line.endswith("region sa does not answer at " + dead.bootstrap + ": the group cannot be moved there now")


def test_destination_behind_is_refused_then_allowed(regions, tmp_path, consumed, group) -> None:
    eu = regions["eu"]
    create_topic(eu.bootstrap, consumed, partitions=1)
    args = ["failover", "-g", group, "-t", consumed, "--from", "us", "--to", "eu", "--no-link-check", "--scan",
            "--regions-file", str(regions_file(tmp_path, regions))]
    line = refused(*args)
    assert f"eu lacks records the group already processed in us (stream us/{consumed}/0: processed up to 119" in line
    assert committed(eu, group, consumed, 1) == {}

    done = amity(*args, "--allow-behind")
    assert done.returncode == 0, done.stderr
    assert "lacks records the group already processed" in done.stderr
    assert committed(eu, group, consumed, 1) == {0: 0}
