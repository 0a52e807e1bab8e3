"""Workers' stats reports folded into totals, five-second buckets and latest gauges."""

from typing import TypeVar

from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from amity.coordinator import aggregation
from amity.coordinator.keys import Keys
from amity.coordinator.schemas.stats import StatsView
from amity.stats import LinkHealth, StatsReport, TopicStats

V = TypeVar("V")
RUN_FIELD = "run"  # cannot clash with `link|topic` fields
HEALTH_FIELD = "health"  # neither: the worker's links' health, as the report's `links` in JSON
_NOT_TOPICS = (RUN_FIELD, HEALTH_FIELD)
_HEALTH = TypeAdapter(list[LinkHealth])


class StatsStore:
    # KEYS - hashes to add to (totals, bucket); ARGV - field, increment, field, increment, ...
    # Adds each increment to the field in every hash, stopping at the largest 64-bit integer instead of
    # failing: one absurd report must not make every later HINCRBY on that field an error.
    # Returns the number of fields that stopped at the limit.
    ADD_SATURATING = """
    local limit = 9.0e18
    local capped = 0
    for k = 1, #KEYS do
        for i = 1, #ARGV, 2 do
            local current = tonumber(redis.call('HGET', KEYS[k], ARGV[i]) or '0')
            if current + tonumber(ARGV[i + 1]) >= limit then
                redis.call('HSET', KEYS[k], ARGV[i], '9000000000000000000')
                capped = capped + 1
            else
                redis.call('HINCRBY', KEYS[k], ARGV[i], ARGV[i + 1])
            end
        end
    end
    return capped
    """

    def __init__(self, redis: Redis, keys: Keys, forget_s: float) -> None:
        self._redis = redis
        self._keys = keys
        self._forget_s = forget_s
        self._add = redis.register_script(self.ADD_SATURATING)

    async def record(self, worker_id: str, report: StatsReport, now: float) -> None:
        """Add what the report counted since this worker's previous report."""
        last_key = self._keys.stats_last(worker_id)

        async def write(pipe: Pipeline) -> None:
            stored = await pipe.hgetall(last_key)
            last_run = stored.get(RUN_FIELD)
            last = {_key(name): aggregation.flatten(TopicStats.model_validate_json(raw))
                    for name, raw in _topic_entries(stored)}
            increases = aggregation.report_increases(last, last_run, report)
            bucket = self._keys.stats_bucket(int(now // aggregation.BUCKET_S))
            increments = [part for key, added in increases.items() for metric, count in added.items()
                          for part in (aggregation.field(key, metric), count)]
            pipe.multi()
            if increments:
                await self._add(keys=[self._keys.stats_totals, bucket], args=increments, client=pipe)
            pipe.expire(bucket, aggregation.WINDOW_S + 2 * aggregation.BUCKET_S)
            if last_run != report.run_id:
                pipe.delete(last_key)
            pipe.hset(last_key, mapping={RUN_FIELD: report.run_id, HEALTH_FIELD: _HEALTH.dump_json(report.links), **{
                f"{e.link}{aggregation.SEPARATOR}{e.topic}": e.model_dump_json() for e in report.topics}})
            pipe.expire(last_key, int(self._forget_s) + 60)

        await self._redis.transaction(write, last_key)

    async def view(self, live_workers: list[str], now: float, link: str | None = None,
                   topic: str | None = None) -> StatsView:
        return (await self.read(live_workers, now, link, topic))[0]

    async def read(self, live_workers: list[str], now: float, link: str | None = None,
                   topic: str | None = None) -> tuple[StatsView, dict[str, dict[str, LinkHealth]]]:
        """The stats view, and per live worker the health of each link it ran at its last report: both come
        from the same reports, read in one round trip."""
        buckets, span_s = aggregation.window(now)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self._keys.stats_totals)
            for bucket in buckets:
                pipe.hgetall(self._keys.stats_bucket(bucket))
            for worker_id in live_workers:
                pipe.hgetall(self._keys.stats_last(worker_id))
            replies = await pipe.execute()
        windows, reports = replies[1:1 + len(buckets)], replies[1 + len(buckets):]
        totals = _only(aggregation.group(replies[0]), link, topic)
        recent = _only(aggregation.group(_summed(windows)), link, topic)
        latest = [TopicStats.model_validate_json(raw) for reply in reports for _, raw in _topic_entries(reply)]
        lag = _only(aggregation.gauges(latest), link, topic)
        health = {worker_id: {h.link: h for h in _HEALTH.validate_json(reply[HEALTH_FIELD])}
                  for worker_id, reply in zip(live_workers, reports) if HEALTH_FIELD in reply}
        return StatsView(links=aggregation.link_views(totals, recent, lag, span_s),
                         topics=aggregation.topic_views(totals, recent, lag, span_s)), health


def _topic_entries(report: dict[str, str]) -> list[tuple[str, str]]:
    """The `link|topic` fields of a stored report, without its run id and link health."""
    return [(name, raw) for name, raw in report.items() if name not in _NOT_TOPICS]


def _key(name: str) -> tuple[str, str]:
    link, _, topic = name.partition(aggregation.SEPARATOR)
    return link, topic


def _summed(replies: list[dict[str, str]]) -> dict[str, int]:
    summed: dict[str, int] = {}
    for reply in replies:
        for name, count in reply.items():
            summed[name] = summed.get(name, 0) + int(count)
    return summed


def _only(grouped: dict[aggregation.Key, V], link: str | None, topic: str | None) -> dict[aggregation.Key, V]:
    return {key: value for key, value in grouped.items()
            if (link is None or key[0] == link) and (topic is None or key[1] == topic)}
