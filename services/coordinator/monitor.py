"""Background work: region health checks, forgetting silent workers, keeping the assignment current."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from amity.coordinator.context import Coordinator
from amity.coordinator.probes import region_health
from amity.coordinator.topology_view import topology

log = logging.getLogger(__name__)


class Monitor:
    def __init__(self, c: Coordinator) -> None:
        self._c = c
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    def start(self) -> None:
        settings = self._c.settings
        self._tasks = [
            asyncio.create_task(self._every(settings.health_interval_s, self.check_regions), name="region-health"),
            asyncio.create_task(self._every(settings.heartbeat_interval_s, self.tend_workers), name="workers"),
        ]

    async def stop(self) -> None:
        # The event, not only cancel(): redis-py can swallow a cancellation that lands mid-command.
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def check_regions(self) -> None:
        regions = await self._c.regions.all()
        checks = await asyncio.gather(*(region_health(r, self._c.settings.probe_timeout_s) for r in regions.values()))
        for name, health in zip(regions, checks, strict=True):
            await self._c.regions.set_health(name, health)
        self._c.metrics.regions(dict(zip(regions, checks, strict=True)))

    async def tend_workers(self) -> None:
        """Forget long-silent workers, move links off late ones, and refresh the gauges."""
        c = self._c
        now = c.clock()
        forgotten = await c.workers.silent_since(now - c.settings.worker_forget_s)
        await c.workers.remove(*forgotten)
        live = await c.live_workers()
        snapshot = await c.assignment.refresh(live)
        c.metrics.workers_live.set(len(live))
        c.metrics.generation.set(snapshot.state.generation)
        c.metrics.rules_version.set((await c.rules.current()).version)
        stats, link_health = await c.stats.read(live, now)
        view = topology(await c.regions.all(), await c.regions.health(), snapshot.links, snapshot.state, live,
                        stats.links, link_health)
        c.metrics.link_states(view.links)
        c.metrics.link_stats(stats.links)

    async def _every(self, interval_s: float, work: Callable[[], Awaitable[None]]) -> None:
        while not self._stopping.is_set():
            try:
                await work()
            except (RedisError, OSError) as exc:
                log.warning("%s: the coordinator's Redis did not answer (%s); retrying in %gs",
                            work.__name__, exc, interval_s)
            except Exception:  # noqa: BLE001 - a failed round is logged in full; the next round retries
                log.exception("background task %s failed; retrying in %gs", work.__name__, interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_s)
