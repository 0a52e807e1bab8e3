"""Failover and failback of one consumer group on one topic: checks, translation, commit.

`failover()` is the whole operation, for the CLI and for a REST endpoint
alike: it refuses with a FailoverRefused subclass (nothing committed), or
returns a report of what it committed (or, dry, would commit) per partition.

Failover moves a group from region A (where it reads `topic`) to region B
(where it reads the link's copy of `topic`); failback moves it from B back to
A. The region the group leaves is asked first: if it answers, the group's
committed offsets there are translated now (basis "live"); if not, the latest
checkpoint stored in the destination's Redis is used (basis "checkpoint"),
exact as of the moment it was taken.
"""

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from amity.failover.clients import RegionClients, redis_errors
from amity.failover.errors import (
    DestinationBehind, GroupActive, NoLink, RegionUnreachable, TranslationStateMissing, UnknownGroup,
)
from amity.failover.routes import find_link
from amity.failover.settings import FailoverSettings
from amity.failover.checkpoints import Checkpoint
from amity.failover.streams import describe, merged
from amity.failover.translation import Progress, behind
from amity.errors import ConfigError
from amity.links import Link
from amity.regions import Region, RegionName


class Direction(StrEnum):
    FAILOVER = "failover"
    FAILBACK = "failback"


class FailoverRequest(BaseModel):
    """Move `group` between `source` (where it reads `topic`) and `destination` (where it reads the copy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(min_length=1)
    topic: str = Field(min_length=1, description="The topic in `source`, the region the group normally reads in")
    source: RegionName
    destination: RegionName
    direction: Direction = Direction.FAILOVER
    dry_run: bool = False
    check_links: bool = Field(default=True, description="Refuse unless a link source -> destination carries topic")
    remote_topic: str | None = Field(default=None, description="The topic's name in `destination` when links are "
                                     "not checked; the same name by default")
    allow_behind: bool = Field(default=False, description="Commit even if the destination lacks records the group "
                               "already processed (they will be delivered again when they arrive)")
    scan: bool = Field(default=False, description="Without an offset index, read the topics from their start")


class PartitionPlan(BaseModel):
    partition: int
    offset: int = Field(description="Where the group resumes")
    previous: int | None = Field(description="The group's committed offset there before, if any")
    end: int = Field(description="The partition's end offset")
    redelivered: int = Field(description="Records from `offset` on that the group already processed")
    redelivered_exact: bool = Field(description="False when `redelivered` is a lower bound (count limit reached)")


class StreamBehind(BaseModel):
    stream: str
    processed: int
    held: int


class FailoverReport(BaseModel):
    """What was committed (or, dry, would be) and on what basis."""

    group: str
    direction: Direction
    moved_from: str
    from_topic: str
    moved_to: str
    to_topic: str
    basis: Literal["live", "checkpoint"]
    checkpoint_age_s: float | None = None
    committed: bool
    partitions: list[PartitionPlan]
    behind: list[StreamBehind] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def redelivered(self) -> int:
        return sum(p.redelivered for p in self.partitions)


def failover(request: FailoverRequest, regions: Mapping[str, Region], links: Sequence[Link] | None,
             settings: FailoverSettings | None = None) -> FailoverReport:
    """Check, translate and (unless dry) commit; raises a FailoverRefused subclass when it will not."""
    settings = settings or FailoverSettings()
    a, b = _region(regions, request.source), _region(regions, request.destination)
    copy = _copy_topic(request, links)
    if request.direction is Direction.FAILOVER:
        leaving, leaving_topic, joining, joining_topic = a, request.topic, b, copy
    else:
        leaving, leaving_topic, joining, joining_topic = b, copy, a, request.topic
    there = RegionClients(joining, settings)
    here = RegionClients(leaving, settings, admin_timeout_s=settings.probe_timeout_s)
    try:
        return _move(request, here, leaving_topic, there, joining_topic)
    finally:
        here.close()
        there.close()


def _move(request: FailoverRequest, here: RegionClients, topic: str, there: RegionClients,
          copy: str) -> FailoverReport:
    warnings: list[str] = []
    partitions = _destination_partitions(request.group, there, topic, copy)
    progress, basis, age = _progress(request, here, topic, there, warnings)
    with redis_errors(there.region):
        if not request.scan and not there.positions.indexed(copy):
            raise _no_index(there.region.name, copy)
        resumes = [there.positions.resume(copy, q, progress.processed) for q in range(partitions)]
    previous = {p: o for (_t, p), o in there.admin.committed(request.group, copy, partitions).items()}
    lagging = behind(progress.processed, merged(r.seen for r in resumes))
    if lagging:
        summary = _behind(there.region.name, here.region.name, lagging)
        if basis == "live" and not request.allow_behind:
            raise DestinationBehind(f"{summary}: wait for the mirror to catch up, or allow it (--allow-behind)")
        warnings.append(f"{summary}: those records are delivered again if they arrive")
    if not request.dry_run:
        _commit(request.group, here, topic, there, copy, {r.partition: r.offset for r in resumes}, progress, warnings)
    return FailoverReport(
        group=request.group, direction=request.direction, moved_from=here.region.name, from_topic=topic,
        moved_to=there.region.name, to_topic=copy, basis=basis, checkpoint_age_s=age, committed=not request.dry_run,
        partitions=[PartitionPlan(partition=r.partition, offset=r.offset, previous=previous.get(r.partition), end=r.end,
                                  redelivered=r.redelivered, redelivered_exact=r.counted_all and not progress.split)
                    for r in resumes],
        behind=[StreamBehind(stream=describe(s), processed=h, held=held) for s, (h, held) in lagging.items()],
        warnings=warnings,
    )


def _destination_partitions(group: str, there: RegionClients, topic: str, copy: str) -> int:
    """The copy's partition count, once the destination answers and the group has no members there."""
    if not there.admin.reachable():
        raise RegionUnreachable(f"region {there.region.name} does not answer at {there.region.bootstrap}: the group "
                                "cannot be moved there now")
    _refuse_if_active(there, group)
    partitions = there.admin.partitions(copy)
    if partitions is None:
        raise NoLink(f"topic {copy} does not exist in {there.region.name}: nothing of {topic} has been mirrored there")
    return partitions


def _progress(request: FailoverRequest, here: RegionClients, topic: str, there: RegionClients,
              warnings: list[str]) -> tuple[Progress, Literal["live", "checkpoint"], float | None]:
    """The group's progress: from its live offsets if the region it leaves answers, else from the checkpoint."""
    if here.admin.reachable():
        progress, basis, age = _live_progress(request, here, topic, warnings), "live", None
    else:
        checkpoint = _checkpoint(request, here, topic, there)
        progress, basis, age = checkpoint.progress(), "checkpoint", checkpoint.age_s()
        warnings.append(f"{here.region.name} is unreachable: translated from the checkpoint taken {age:.1f}s ago; "
                        f"records the group processed in {here.region.name} after it are delivered again")
    if progress.split:
        warnings.append(f"{len(progress.split)} stream(s) are spread over partitions (partition counts differ between "
                        "regions): re-deliveries of them are not all counted")
    return progress, basis, age


def _commit(group: str, here: RegionClients, topic: str, there: RegionClients, copy: str, offsets: dict[int, int],
            progress: Progress, warnings: list[str]) -> None:
    there.admin.commit(group, copy, offsets)
    try:
        with redis_errors(there.region):
            there.store.mark_owned(group, copy, offsets)
            there.store.save_moved(copy, Checkpoint.of(here.region.name, group, topic, {}, progress))
    except RegionUnreachable as exc:  # the move is made: say what is missing, never that nothing was committed
        warnings.append(f"the offsets are committed in {there.region.name}, but recording the move there failed "
                        f"({exc}): until the move is made again with its Redis back, the checkpointer's offset sync "
                        f"may overwrite them while the group has no consumers there")
    _release(here, group, topic, Checkpoint.of(there.region.name, group, copy, offsets, progress), warnings)


def _live_progress(request: FailoverRequest, here: RegionClients, topic: str, warnings: list[str]) -> Progress:
    group = request.group
    partitions = here.admin.partitions(topic)
    if partitions is None:
        raise UnknownGroup(f"topic {topic} does not exist in {here.region.name}")
    committed = {p: o for (_t, p), o in here.admin.committed(group, topic, partitions).items()}
    if not committed:
        raise UnknownGroup(f"group {group} has no committed offset on {topic} in {here.region.name}")
    members = here.admin.members(group)
    if members:
        warnings.append(f"group {group} still has {members} member(s) in {here.region.name}: what they process from "
                        "now on is delivered again after the move")
    with redis_errors(here.region):
        if not request.scan and not here.positions.indexed(topic):
            raise _no_index(here.region.name, topic)
        return here.positions.progress(topic, committed, partitions)


def _checkpoint(request: FailoverRequest, here: RegionClients, topic: str, there: RegionClients) -> Checkpoint:
    with redis_errors(there.region):
        checkpoint = there.store.load(here.region.name, request.group, topic)
    if checkpoint is None:
        raise TranslationStateMissing(
            f"{here.region.name} is unreachable and {there.region.name}'s Redis has no checkpoint of group "
            f"{request.group} on {topic} from {here.region.name}: run `amity checkpoint run` while both regions are up "
            f"(it checkpoints groups matching its --groups pattern), or bring {here.region.name} back")
    return checkpoint


def _release(here: RegionClients, group: str, topic: str, moved: Checkpoint, warnings: list[str]) -> None:
    """Mark the group's offsets in the region it leaves as Amity's, so the checkpointer may keep them in sync, and
    leave there the checkpoint a move back would need: `moved`, the group's progress where it now runs.

    The checkpointer skips offsets Amity committed itself, so until the group commits in its new region, the
    region it left would otherwise keep the checkpoint from before it last left that region, and a move back
    from that checkpoint would deliver again everything processed since.
    """
    try:
        if not here.admin.reachable():
            return
        with redis_errors(here.region):
            here.store.save(moved)
        partitions = here.admin.partitions(topic)
        if not partitions:  # the topic is gone from the region it leaves (a rebuilt cluster): nothing to keep in sync
            warnings.append(f"{topic} has no partitions in {here.region.name} now, so the group's offsets there "
                            "are not marked for syncing")
            return
        left = {p: o for (_t, p), o in here.admin.committed(group, topic, partitions).items()}
        with redis_errors(here.region):
            here.store.mark_owned(group, topic, left)
    except RegionUnreachable as exc:
        warnings.append(f"could not record the move in {here.region.name} (the checkpoint a move back needs, the "
                        f"offsets to keep in sync): {exc}")


def _refuse_if_active(there: RegionClients, group: str) -> None:
    members = there.admin.members(group)
    if members:
        raise GroupActive(f"group {group} has {members} active member(s) in {there.region.name}: stop its consumers "
                          "there first")


def _copy_topic(request: FailoverRequest, links: Sequence[Link] | None) -> str:
    if not request.check_links:
        return request.remote_topic or request.topic
    if links is None:
        raise NoLink("the links between regions are unknown: pass the mirror config (--config), or skip the check "
                     "(--no-link-check, with --remote-topic if the copy is named differently)")
    link = find_link(links, request.source, request.destination, request.topic)
    if link is None:
        raise NoLink(f"no link {request.source} -> {request.destination} replicates {request.topic}: "
                     f"{request.destination} has no copy of it to move the group to")
    return link.destination_topic(request.topic)


def _region(regions: Mapping[str, Region], name: str) -> Region:
    if name not in regions:
        raise ConfigError(f"unknown region {name!r}; known: {', '.join(sorted(regions)) or 'none'}")
    return regions[name]


def _no_index(region: str, topic: str) -> TranslationStateMissing:
    return TranslationStateMissing(
        f"no offset index for {topic} in {region}'s Redis: start `amity checkpoint run --config MIRROR.yaml` and "
        f"let it index {topic}, or pass --scan to read the topics from their start (slow on long topics)")


def _behind(there: str, here: str, lagging: dict) -> str:
    stream, (processed, held) = next(iter(lagging.items()))
    more = f" and {len(lagging) - 1} more stream(s)" if len(lagging) > 1 else ""
    holds = f"{there} holds up to {held}" if held >= 0 else f"{there} holds none of it"
    return (f"{there} lacks records the group already processed in {here} (stream {describe(stream)}: processed up "
            f"to {processed}, {holds}{more})")
