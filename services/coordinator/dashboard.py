"""The live dashboard's data: snapshots of the coordinator's state, as server-sent events.

Snapshots are taken by the event streams themselves, at most once a period and
shared by every open dashboard, so ten dashboards cost Redis what one does and
a coordinator nobody watches does no work for them. The rate series live in
the coordinator's memory: a dashboard opened later starts with the minutes
that others watched, and one reconnecting asks only for what it missed.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from amity.coordinator.context import Coordinator
from amity.coordinator.rate_series import ALL_LINKS, FIELDS, SeriesBook, Totals
from amity.coordinator.schemas.rules import RuleChange, RuleSetPublic
from amity.coordinator.schemas.stats import Counts, StatsView
from amity.coordinator.schemas.topology import TopologyView
from amity.coordinator.topology_view import topology
from amity.errors import AmityError

RULE_CHANGES_SHOWN = 20


class DashboardState(BaseModel):
    """Everything the dashboard draws, at one instant."""

    at: float = Field(description="Seconds since the epoch, by the coordinator's clock")
    workers_live: int
    topology: TopologyView
    stats: StatsView
    rules: RuleSetPublic
    rule_changes: list[RuleChange] = Field(description="The latest rule changes, newest first")


async def current_state(c: Coordinator) -> DashboardState:
    """One consistent-enough read of regions, links, stats and rules (a few Redis round trips)."""
    live = await c.live_workers()
    now = c.clock()
    regions, health, links = await c.regions.all(), await c.regions.health(), await c.links.all()
    assignment = await c.assignment.current()
    stats, link_health = await c.stats.read(live, now)
    return DashboardState(at=now, workers_live=len(live),
                          topology=topology(regions, health, links, assignment, live, stats.links, link_health),
                          stats=stats,
                          rules=await c.rules.current(), rule_changes=await c.rules.history(None, RULE_CHANGES_SHOWN))


def totals_by_key(stats: StatsView) -> dict[str, Totals]:
    """Chart keys: every link, every `link|topic`, and ALL_LINKS for the sum over links."""
    keyed = {view.link: _totals(view.total, view.lag_records, view.lag_seconds) for view in stats.links}
    everything = Totals()
    for value in keyed.values():
        everything = everything + value
    keyed[ALL_LINKS] = everything
    for view in stats.topics:
        keyed[f"{view.link}|{view.topic}"] = _totals(view.total, view.lag_records, view.lag_seconds)
    return keyed


def _totals(counts: Counts, lag_records: int, lag_seconds: float) -> Totals:
    return Totals(replicated=counts.replicated, bytes=counts.bytes, dropped=sum(counts.dropped.values()),
                  conflicts=counts.conflicts.detected, stale=counts.conflicts.stale,
                  dead_lettered=sum(counts.dead_lettered.values()), lag_records=lag_records,
                  lag_seconds=lag_seconds)


@dataclass(frozen=True, slots=True)
class Frame:
    """One sample, with its event text built once for every stream."""

    seq: int
    at: float
    state_json: str
    tick: str


class SnapshotError(AmityError):
    """Taking a snapshot failed; carries the message every waiting stream reports."""


class Sampler:
    """Takes a snapshot when a stream asks for one newer than it has and the last is a period old."""

    def __init__(self, take: Callable[[], Awaitable[DashboardState]], period_s: float = 1.0,
                 book: SeriesBook | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.take = take
        self.period_s = period_s
        self.book = book or SeriesBook()
        self.clock = clock
        self.latest: Frame | None = None
        self._taken_at = float("-inf")
        self._failure: tuple[float, str] | None = None
        self._lock = asyncio.Lock()

    async def next(self, after: int) -> Frame:
        """The first frame with a sequence number above `after`, waiting for the period when it must be taken.

        Streams queue on the lock, so the first one in takes the snapshot and the others find it taken."""
        async with self._lock:
            if self.latest is not None and self.latest.seq > after:
                return self.latest
            if self._failure is not None and self.clock() - self._failure[0] < self.period_s:
                raise SnapshotError(self._failure[1])
            await asyncio.sleep(max(self._taken_at + self.period_s - self.clock(), 0))
            self._taken_at = self.clock()
            try:
                state = await self.take()
            except (RedisError, OSError, ValueError) as exc:  # every open dashboard shows it and tries again
                self._failure = (self.clock(), f"the coordinator could not read its state: {exc}")
                raise SnapshotError(self._failure[1]) from exc
            self._failure = None
            self.latest = self._frame(state, 0 if self.latest is None else self.latest.seq + 1)
            return self.latest

    def _frame(self, state: DashboardState, seq: int) -> Frame:
        points = self.book.record(state.at, totals_by_key(state.stats))
        state_json = state.model_dump_json()
        rows = _compact({key: p.row() for key, p in points.items()})
        return Frame(seq=seq, at=state.at, state_json=state_json,
                     tick=f'{{"kind":"tick","state":{state_json},"points":{rows}}}')

    def hello(self, frame: Frame, since: float | None) -> str:
        """The first event of a stream: the state, and every point after `since` (all when None)."""
        series = {key: [p.row() for p in points] for key, points in self.book.since(since).items()}
        return (f'{{"kind":"hello","fields":{_compact(FIELDS)},"series":{_compact(series)},'
                f'"state":{frame.state_json}}}')


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def event(kind: str, data: str, seq: int | None = None) -> str:
    """One server-sent event; `data` must be a single line (compact JSON is)."""
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {kind}\ndata: {data}\n\n"


async def stream(sampler: Sampler, since: float | None, lifetime_s: float,
                 clock: Callable[[], float] = time.monotonic) -> AsyncIterator[str]:
    """Events for one dashboard: a hello, then a tick per sample, ending after `lifetime_s` so that a
    coordinator shutting down never waits on an open dashboard for long (the page reconnects)."""
    ends = clock() + lifetime_s
    yield "retry: 2000\n\n"
    seq = -1
    while clock() < ends:
        try:
            frame = await sampler.next(seq)
        except SnapshotError as exc:
            yield event("problem", json.dumps({"detail": str(exc)}))
            await asyncio.sleep(sampler.period_s)
            continue
        yield event("hello" if seq < 0 else "tick", sampler.hello(frame, since) if seq < 0 else frame.tick, frame.seq)
        seq = frame.seq
