"""Registered mirror workers and when each was last heard from."""

import secrets
from datetime import UTC, datetime

from pydantic import BaseModel
from redis.asyncio import Redis

from amity.coordinator.errors import NotFoundError
from amity.coordinator.keys import Keys


class WorkerRecord(BaseModel):
    id: str
    name: str
    version: str | None = None
    registered_at: datetime


class WorkerStatus(BaseModel):
    record: WorkerRecord
    last_seen: float | None = None  # unix time
    running: int | None = None  # the generation it said it runs


def not_registered(worker_id: str) -> NotFoundError:
    return NotFoundError(f"worker {worker_id!r} is not registered (it was silent too long and was forgotten, "
                         "or it left): register again with POST /v1/workers")


class WorkerStore:
    # KEYS[1] - workers hash, KEYS[2] - last-seen zset, KEYS[3] - running-generation hash;
    # ARGV[1] - worker id, ARGV[2] - unix time, ARGV[3] - generation the worker runs ('' when none yet).
    # Records a heartbeat only for a registered worker, so a worker that was forgotten or left stays gone.
    # Returns 1 when recorded, 0 when the worker is not registered.
    TOUCH = """
    if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
        return 0
    end
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
    if ARGV[3] == '' then
        redis.call('HDEL', KEYS[3], ARGV[1])
    else
        redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
    end
    return 1
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._touch = redis.register_script(self.TOUCH)

    async def register(self, name: str, version: str | None, now: float) -> WorkerRecord:
        record = WorkerRecord(id=f"{name}-{secrets.token_hex(4)}", name=name, version=version,
                              registered_at=datetime.fromtimestamp(now, UTC))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.workers, record.id, record.model_dump_json())
            pipe.zadd(self._keys.workers_seen, {record.id: now})
            await pipe.execute()
        return record

    async def touch(self, worker_id: str, now: float, running: int | None) -> None:
        """Note a heartbeat, and the generation the worker says it runs."""
        keys = [self._keys.workers, self._keys.workers_seen, self._keys.workers_running]
        if not await self._touch(keys=keys, args=[worker_id, now, "" if running is None else running]):
            raise not_registered(worker_id)

    async def remove(self, *worker_ids: str) -> int:
        """Unregister workers and drop their last stats; returns how many were registered."""
        if not worker_ids:
            return 0
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self._keys.workers, *worker_ids)
            pipe.zrem(self._keys.workers_seen, *worker_ids)
            pipe.hdel(self._keys.workers_running, *worker_ids)
            pipe.delete(*(self._keys.stats_last(w) for w in worker_ids))
            removed, *_ = await pipe.execute()
        return removed

    async def all(self) -> dict[str, WorkerStatus]:
        records = await self._redis.hgetall(self._keys.workers)
        seen = dict(await self._redis.zrange(self._keys.workers_seen, 0, -1, withscores=True))
        running = await self._redis.hgetall(self._keys.workers_running)
        return {worker_id: WorkerStatus(record=WorkerRecord.model_validate_json(raw), last_seen=seen.get(worker_id),
                                        running=int(running[worker_id]) if worker_id in running else None)
                for worker_id, raw in sorted(records.items())}

    async def live(self, now: float, timeout_s: float) -> list[str]:
        return sorted(await self._redis.zrangebyscore(self._keys.workers_seen, now - timeout_s, "+inf"))

    async def silent_since(self, cutoff: float) -> list[str]:
        return await self._redis.zrangebyscore(self._keys.workers_seen, "-inf", f"({cutoff}")
