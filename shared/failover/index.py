"""The offset index: per partition, a snapshot of the stream frontier every K records, in the region's Redis.

A snapshot at local offset o holds, per origin stream, the highest origin
offset among the partition's records below o. Any local offset is then
translated exactly by reading at most K records from the nearest snapshot at
or before it. Snapshots live in one sorted set per partition (score = offset),
so the nearest one is a single ZREVRANGEBYSCORE and the last one before a
resume point is a binary search over ranks.

Cost: one snapshot per K records, about 60 bytes plus 25 per stream the
partition holds (a stream per region in an active-active mesh). Trimming
keeps one snapshot at or below the log start offset and drops the older ones,
so the index is bounded by retention / K snapshots per partition.
"""

from dataclasses import dataclass

import msgpack
import redis

from amity.failover.streams import Frontier, Stream, from_wire, to_wire
from amity.failover.translation import crossed

PREFIX = "amity:failover"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The running frontier of a partition just before local offset `offset`."""

    offset: int
    seen: Frontier

    def pack(self) -> bytes:
        return msgpack.packb([self.offset, to_wire(self.seen)])

    @staticmethod
    def unpack(raw: bytes) -> "Snapshot":
        offset, entries = msgpack.unpackb(raw)
        return Snapshot(offset, from_wire(entries))


def snapshots_key(topic: str, partition: int) -> str:
    return f"{PREFIX}:index:{topic}:{partition}"


def progress_key(topic: str) -> str:
    return f"{PREFIX}:progress:{topic}"


class OffsetIndex:
    """Reads and writes one region's snapshots."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def add(self, pipe: redis.client.Pipeline, topic: str, partition: int, snapshot: Snapshot) -> None:
        pipe.zadd(snapshots_key(topic, partition), {snapshot.pack(): snapshot.offset})

    def record_progress(self, pipe: redis.client.Pipeline, topic: str, positions: dict[int, int]) -> None:
        """How far each partition has been indexed (next offset to read): tells a fresh index from a missing one."""
        pipe.hset(progress_key(topic), mapping={str(p): o for p, o in positions.items()})

    def progress(self, topic: str) -> dict[int, int]:
        return {int(p): int(o) for p, o in self.redis.hgetall(progress_key(topic)).items()}

    def nearest(self, topic: str, partition: int, offset: int) -> Snapshot | None:
        """The last snapshot at or before `offset`."""
        found = self.redis.zrevrangebyscore(snapshots_key(topic, partition), offset, "-inf", start=0, num=1)
        return Snapshot.unpack(found[0]) if found else None

    def latest(self, topic: str, partition: int) -> Snapshot | None:
        found = self.redis.zrange(snapshots_key(topic, partition), -1, -1)
        return Snapshot.unpack(found[0]) if found else None

    def last_uncrossed(self, topic: str, partition: int, processed: dict[Stream, int]) -> Snapshot | None:
        """The last snapshot before which the group has processed everything; None if even the first has crossed."""
        key = snapshots_key(topic, partition)
        low, high = 0, self.redis.zcard(key) - 1
        best = None
        while low <= high:
            middle = (low + high) // 2
            found = self.redis.zrange(key, middle, middle)
            if not found:
                break
            snapshot = Snapshot.unpack(found[0])
            if crossed(snapshot.seen, processed):
                high = middle - 1
            else:
                best, low = snapshot, middle + 1
        return best

    def snapshot_count(self, topic: str, partition: int) -> int:
        return self.redis.zcard(snapshots_key(topic, partition))

    def trim(self, topic: str, partition: int, log_start: int) -> int:
        """Drop snapshots older than the last one at or below the log start offset; returns how many."""
        key = snapshots_key(topic, partition)
        floor = self.redis.zrevrangebyscore(key, log_start, "-inf", start=0, num=1, withscores=True)
        if not floor:
            return 0
        return self.redis.zremrangebyscore(key, "-inf", f"({int(floor[0][1])}")

    def drop_partition(self, topic: str, partition: int) -> None:
        """Forget a partition whose log was recreated or truncated: its offsets mean something else now."""
        with self.redis.pipeline() as pipe:
            pipe.delete(snapshots_key(topic, partition))
            pipe.hdel(progress_key(topic), str(partition))
            pipe.execute()

    def drop_topic(self, topic: str, partitions: int) -> None:
        with self.redis.pipeline() as pipe:
            for partition in range(partitions):
                pipe.delete(snapshots_key(topic, partition))
            pipe.delete(progress_key(topic))
            pipe.execute()

    def indexed_topics(self) -> list[str]:
        prefix = f"{PREFIX}:progress:"
        return sorted(key.decode()[len(prefix):] for key in self.redis.scan_iter(match=f"{prefix}*", count=1000))
