"""Continuous checkpointing: `amity checkpoint run`.

For each region it serves, the checkpointer runs two threads:

- a tailer that keeps the region's offset index current (amity.failover.tailer);
- an exporter that, every interval, reads the committed offsets of the groups
  matching a pattern, turns them into frontiers, stores them as checkpoints in
  the Redis of every region the group could move to (amity.failover.routes),
  and writes the translated offsets into the group there, like MirrorMaker 2's
  sync.group.offsets, only while the group has no members there and its
  offsets there are Amity's own (or it has none).

A frontier only changes when the group commits, so it is recomputed only then.
A checkpoint is refreshed every interval all the same: its age tells a
failover how old the last good view of the source is.
"""

import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from amity.failover.checkpoints import Checkpoint
from amity.failover.clients import RegionClients
from amity.failover.errors import FailoverRefused
from amity.failover.routes import Route, indexed, routes_from
from amity.failover.settings import FailoverSettings
from amity.failover.streams import Frontier, merged
from amity.failover.tailer import Tailer
from amity.failover.translation import Progress, behind
from amity.links import Link
from amity.regions import Region

log = logging.getLogger(__name__)

INTERNAL_GROUPS = re.compile(r"amity-.*")


RESYNC_S = 60.0


@dataclass(slots=True)
class _Synced:
    """What the last sync of a group into a region was based on, and when."""

    frontier: Frontier
    final: bool
    at: float

    def still_valid(self, frontier: Frontier) -> bool:
        """Nothing to redo: same frontier, nothing was missing there, and checked recently."""
        return self.final and self.frontier == frontier and time.monotonic() - self.at < RESYNC_S


class Checkpointer:
    """Indexes `serve` regions and exports their groups' checkpoints to the regions they link to."""

    def __init__(self, regions: dict[str, Region], links: Sequence[Link], groups: str,
                 settings: FailoverSettings | None = None, serve: Sequence[str] | None = None,
                 sync: bool = True) -> None:
        self.regions = regions
        self.links = list(links)
        self.groups = re.compile(groups)
        self.settings = settings or FailoverSettings()
        self.serve = list(serve) if serve else sorted({end for link in self.links for end in (link.source,
                                                                                               link.destination)})
        self.sync = sync
        self.exported = 0
        self.synced = 0

    def run(self, stop: threading.Event) -> None:
        """Run until `stop` is set."""
        threads = []
        for name in self.serve:
            region = self.regions[name]
            tailer = Tailer(region, lambda topic, r=name: indexed(r, topic, self.links),
                            RegionClients(region, self.settings).index, self.settings.snapshot_every,
                            self.settings.discovery_interval_s, self.settings.trim_interval_s)
            threads.append(threading.Thread(target=tailer.run, args=(stop,), name=f"tailer-{name}", daemon=True))
            exporter = _Exporter(self, region)
            threads.append(threading.Thread(target=exporter.run, args=(stop,), name=f"export-{name}", daemon=True))
        for thread in threads:
            thread.start()
        log.info("checkpointer: indexing and exporting %s, groups matching %s", ", ".join(self.serve),
                 self.groups.pattern)
        stop.wait()
        for thread in threads:
            thread.join(timeout=30)


class _Exporter:
    """One region's groups, checkpointed into the regions they may move to."""

    def __init__(self, owner: Checkpointer, region: Region) -> None:
        self.owner = owner
        self.settings = owner.settings
        self.here = RegionClients(region, owner.settings)
        self.remotes: dict[str, RegionClients] = {}
        self.progress: dict[tuple[str, str], tuple[dict[int, int], Progress]] = {}
        self.synced: dict[tuple[str, str, str], _Synced] = {}

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.checkpoint_interval_s):
            try:
                self.export_all(stop)
            except (FailoverRefused, redis.RedisError) as exc:
                log.warning("checkpointer %s: %s", self.here.region.name, exc)
                self._reset(self.here)

    def export_all(self, stop: threading.Event) -> None:
        admin = self.here.admin
        counts = admin.partition_counts()
        for group in admin.groups():
            if stop.is_set():
                return
            if not self.owner.groups.fullmatch(group) or INTERNAL_GROUPS.fullmatch(group):
                continue
            by_topic: dict[str, dict[int, int]] = {}
            for (topic, partition), offset in admin.committed(group).items():
                by_topic.setdefault(topic, {})[partition] = offset
            for topic, committed in by_topic.items():
                routes = routes_from(self.here.region.name, topic, self.owner.links)
                if routes and topic in counts:
                    self.export(group, topic, committed, counts[topic], routes)

    def export(self, group: str, topic: str, committed: dict[int, int], partitions: int, routes: list[Route]) -> None:
        """Checkpoint one group's progress on one topic into every region it may move to."""
        if self.here.store.owned(group, topic) == committed:
            return
        cached = self.progress.get((group, topic))
        if cached is not None and cached[0] == committed:
            progress = cached[1]
        else:
            try:
                progress = self.here.positions.progress(topic, committed, partitions)
            except (FailoverRefused, redis.RedisError) as exc:  # one partition offline: the other groups go on
                log.warning("checkpointer %s: %s on %s skipped this round: %s", self.here.region.name, group, topic,
                            exc)
                return
            self.progress[(group, topic)] = (committed, progress)
        checkpoint = Checkpoint.of(self.here.region.name, group, topic, committed, progress)
        for route in routes:
            remote = self._remote(route.destination)
            try:
                remote.store.save(checkpoint)
                self.owner.exported += 1
                if self.owner.sync:
                    self._sync(remote, group, route.destination_topic, progress.processed)
            except (FailoverRefused, redis.RedisError) as exc:
                log.warning("checkpointer %s: %s into %s: %s", self.here.region.name, group, route.destination, exc)
                self._reset(remote)

    def _sync(self, remote: RegionClients, group: str, topic: str, frontier: Frontier) -> None:
        """Write the translated offsets into the group in `remote`, if nobody but Amity has moved it there."""
        key = (remote.region.name, group, topic)
        last = self.synced.get(key)
        if last is not None and last.still_valid(frontier):
            return
        if remote.admin.members(group):
            return
        partitions = remote.admin.partitions(topic)
        if partitions is None or not remote.positions.indexed(topic):
            return
        current = {p: o for (_t, p), o in remote.admin.committed(group, topic, partitions).items()}
        if current and current != remote.store.owned(group, topic):
            return
        resumes = [remote.positions.resume(topic, q, frontier) for q in range(partitions)]
        offsets = {r.partition: r.offset for r in resumes}
        if offsets != current and self._unchanged(remote, group, topic, partitions, current):
            remote.admin.commit(group, topic, offsets)
            remote.store.mark_owned(group, topic, offsets)
            self.owner.synced += 1
        self.synced[key] = _Synced(frontier, not behind(frontier, merged(r.seen for r in resumes)), time.monotonic())

    @staticmethod
    def _unchanged(remote: RegionClients, group: str, topic: str, partitions: int, current: dict[int, int]) -> bool:
        """Still idle with the offsets read before translating: a consumer that came and went meanwhile wins.

        Kafka offers no compare-and-set on group offsets; checking again just
        before writing leaves a window of one round trip, shorter than any
        consumer's join.
        """
        if remote.admin.members(group):
            return False
        return {p: o for (_t, p), o in remote.admin.committed(group, topic, partitions).items()} == current

    def _remote(self, name: str) -> RegionClients:
        if name not in self.remotes:
            self.remotes[name] = RegionClients(self.owner.regions[name], self.settings)
        return self.remotes[name]

    def _reset(self, clients: RegionClients) -> None:
        """Drop a region's clients after a failure, so the next round reconnects."""
        clients.close()
        if clients is self.here:
            self.here = RegionClients(clients.region, self.settings)
        else:
            self.remotes.pop(clients.region.name, None)
