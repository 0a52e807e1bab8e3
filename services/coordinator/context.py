"""Everything a request handler or background task needs, opened by the app's lifespan."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis.asyncio as aioredis

from amity.coordinator.keys import Keys
from amity.coordinator.metrics import Metrics
from amity.coordinator.settings import CoordinatorSettings
from amity.coordinator.store.assignment import AssignmentStore
from amity.coordinator.store.links import LinkStore
from amity.coordinator.store.regions import RegionStore
from amity.coordinator.store.rules import RuleStore
from amity.coordinator.store.stats import StatsStore
from amity.coordinator.store.workers import WorkerStore


@dataclass(slots=True)
class Coordinator:
    settings: CoordinatorSettings
    redis: aioredis.Redis
    metrics: Metrics
    regions: RegionStore
    links: LinkStore
    rules: RuleStore
    workers: WorkerStore
    assignment: AssignmentStore
    stats: StatsStore
    clock: Callable[[], float] = time.time

    @classmethod
    def open(cls, settings: CoordinatorSettings, metrics: Metrics) -> "Coordinator":
        """Create the clients; redis-py connects on first use, not here."""
        redis = aioredis.from_url(settings.redis_url, decode_responses=True,
                                  socket_connect_timeout=settings.probe_timeout_s, socket_timeout=30)
        keys = Keys(settings.namespace)
        return cls(settings=settings, redis=redis, metrics=metrics, regions=RegionStore(redis, keys),
                   links=LinkStore(redis, keys), rules=RuleStore(redis, keys, settings.history_limit),
                   workers=WorkerStore(redis, keys), assignment=AssignmentStore(redis, keys),
                   stats=StatsStore(redis, keys, settings.worker_forget_s))

    async def close(self) -> None:
        await self.redis.aclose()

    async def live_workers(self) -> list[str]:
        return await self.workers.live(self.clock(), self.settings.worker_timeout_s)
