"""The dashboard's event stream: one snapshot per period shared by every stream, events, failures."""

import asyncio
import json

from amity.coordinator.dashboard import DashboardState, Sampler, SnapshotError, event, stream, totals_by_key
from amity.coordinator.rate_series import ALL_LINKS, FIELDS
from amity.coordinator.schemas.rules import RuleSetPublic
from amity.coordinator.schemas.stats import Counts, LinkStatsView, StatsView, Throughput, TopicStatsView
from amity.coordinator.schemas.topology import TopologyView
from amity.stats import ConflictCounts

PERIOD = 0.05


def counts(replicated: int, dropped: dict[str, int] | None = None, dead: dict[str, int] | None = None,
           detected: int = 0, stale: int = 0) -> Counts:
    return Counts(replicated=replicated, bytes=10 * replicated, dropped=dropped or {}, dead_lettered=dead or {},
                  conflicts=ConflictCounts(detected=detected, resolved=detected, stale=stale, conflicts_topic=detected))


def stats(replicated: int) -> StatsView:
    us_eu = counts(replicated, {"loop": 3, "max-hops": 1}, {"too-large": 2}, detected=4, stale=5)
    eu_us = counts(2 * replicated, {"loop": 7})
    return StatsView(
        links=[LinkStatsView(link="us-to-eu", topics=1, total=us_eu, last_minute=Counts(), throughput=Throughput(),
                             lag_records=12, lag_seconds=0.5),
               LinkStatsView(link="eu-to-us", topics=1, total=eu_us, last_minute=Counts(), throughput=Throughput(),
                             lag_records=3, lag_seconds=2.0)],
        topics=[TopicStatsView(link="us-to-eu", topic="orders", total=us_eu, last_minute=Counts(),
                               throughput=Throughput(), lag_records=12, lag_seconds=0.5)])


def state(at: float, replicated: int = 100) -> DashboardState:
    return DashboardState(at=at, workers_live=1, topology=TopologyView(generation=1, regions=[], links=[], unreachable=[]),
                          stats=stats(replicated), rules=RuleSetPublic(version=0, rules=[]), rule_changes=[])


class Source:
    """Counts how often a snapshot is taken; fails while `failing` is set."""

    def __init__(self) -> None:
        self.taken = 0
        self.failing: str | None = None

    async def take(self) -> DashboardState:
        self.taken += 1
        if self.failing:
            raise ConnectionError(self.failing)
        return state(1000.0 + self.taken, replicated=100 * self.taken)


def test_totals_per_link_per_topic_and_over_all_links() -> None:
    keyed = totals_by_key(stats(100))
    assert set(keyed) == {"us-to-eu", "eu-to-us", "us-to-eu|orders", ALL_LINKS}
    assert keyed["us-to-eu"].dropped == 4 and keyed["us-to-eu"].dead_lettered == 2
    assert keyed["us-to-eu"].conflicts == 4 and keyed["us-to-eu"].stale == 5
    everything = keyed[ALL_LINKS]
    assert everything.replicated == 300 and everything.dropped == 11
    assert everything.lag_records == 15 and everything.lag_seconds == 2.0


def test_streams_asking_together_share_one_snapshot() -> None:
    async def scenario() -> tuple[list[int], int]:
        source = Source()
        sampler = Sampler(source.take, PERIOD)
        frames = await asyncio.gather(*(sampler.next(-1) for _ in range(5)))
        return [f.seq for f in frames], source.taken

    seqs, taken = asyncio.run(scenario())
    assert seqs == [0] * 5 and taken == 1


def test_a_newer_snapshot_is_taken_no_sooner_than_a_period_later() -> None:
    async def scenario() -> tuple[float, int, int]:
        source = Source()
        sampler = Sampler(source.take, PERIOD)
        first = await sampler.next(-1)
        started = asyncio.get_running_loop().time()
        second = await sampler.next(first.seq)
        return asyncio.get_running_loop().time() - started, second.seq, source.taken

    waited, seq, taken = asyncio.run(scenario())
    assert waited >= PERIOD * 0.9 and seq == 1 and taken == 2


def test_a_failure_is_reported_to_every_stream_without_hammering_the_source() -> None:
    async def scenario() -> tuple[list[object], int]:
        source = Source()
        source.failing = "Redis went away"
        sampler = Sampler(source.take, PERIOD)
        outcomes = await asyncio.gather(*(sampler.next(-1) for _ in range(4)), return_exceptions=True)
        return outcomes, source.taken

    outcomes, taken = asyncio.run(scenario())
    assert taken == 1
    assert all(isinstance(o, SnapshotError) and "Redis went away" in str(o) for o in outcomes)


def test_a_stream_says_hello_with_the_series_then_ticks_and_ends_by_itself() -> None:
    async def scenario() -> list[str]:
        sampler = Sampler(Source().take, PERIOD)
        return [chunk async for chunk in stream(sampler, None, lifetime_s=PERIOD * 3.5)]

    chunks = asyncio.run(scenario())
    assert chunks[0] == "retry: 2000\n\n"
    kinds = [c.split("event: ")[1].split("\n")[0] for c in chunks[1:]]
    assert kinds[0] == "hello" and set(kinds[1:]) == {"tick"} and 2 <= len(kinds) <= 5
    hello = json.loads(chunks[1].split("data: ")[1])
    assert hello["fields"] == list(FIELDS)
    assert hello["state"]["stats"]["links"][0]["link"] == "us-to-eu"
    assert set(hello["series"]) == {"us-to-eu", "eu-to-us", "us-to-eu|orders", ALL_LINKS}
    tick = json.loads(chunks[2].split("data: ")[1])
    row = tick["points"][ALL_LINKS]
    assert len(row) == 1 + len(FIELDS) and row[0] == tick["state"]["at"]
    assert row[1] is not None and row[1] > 0, "records per second between two snapshots"


def test_a_reconnecting_stream_gets_only_the_points_it_missed() -> None:
    async def scenario() -> dict:
        sampler = Sampler(Source().take, PERIOD)
        for seq in range(-1, 3):
            await sampler.next(seq)
        frame = await sampler.next(3)
        return json.loads(sampler.hello(frame, since=1002.0))

    hello = asyncio.run(scenario())
    assert [row[0] for row in hello["series"][ALL_LINKS]] == [1003.0, 1004.0, 1005.0]


def test_a_stream_reports_problems_and_recovers() -> None:
    async def scenario() -> list[str]:
        source = Source()
        source.failing = "Connection refused"
        sampler = Sampler(source.take, PERIOD)
        chunks = []
        async for chunk in stream(sampler, None, lifetime_s=PERIOD * 6):
            chunks.append(chunk)
            if "problem" in chunk:
                source.failing = None
        return chunks

    chunks = asyncio.run(scenario())
    problem = next(c for c in chunks if c.startswith("event: problem"))
    assert "Connection refused" in json.loads(problem.split("data: ")[1])["detail"]
    assert any("event: hello" in c for c in chunks[chunks.index(problem):]), "the first good snapshot says hello"


def test_events_are_framed_for_event_stream_parsers() -> None:
    assert event("tick", '{"a":1}', 7) == 'id: 7\nevent: tick\ndata: {"a":1}\n\n'
    assert event("problem", "{}") == "event: problem\ndata: {}\n\n"
