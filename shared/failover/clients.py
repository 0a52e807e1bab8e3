"""The clients a translation needs in one region: Kafka admin, a partition reader, its Redis."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import redis

from amity.failover.checkpoints import CheckpointStore
from amity.failover.errors import RegionUnreachable
from amity.failover.groups import GroupAdmin
from amity.failover.index import OffsetIndex
from amity.failover.positions import RegionPositions
from amity.failover.reading import PartitionReader
from amity.failover.settings import FailoverSettings
from amity.regions import Region, mask_url_password


class RegionClients:
    """Opened lazily: a region that is down costs nothing until something is asked of it."""

    def __init__(self, region: Region, settings: FailoverSettings, admin_timeout_s: float | None = None) -> None:
        self.region = region
        self.settings = settings
        self.admin = GroupAdmin(region, admin_timeout_s or settings.timeout_s)

    @cached_property
    def redis(self) -> redis.Redis:
        timeout = self.settings.timeout_s
        return redis.Redis.from_url(self.region.redis, socket_timeout=timeout, socket_connect_timeout=timeout)

    @cached_property
    def index(self) -> OffsetIndex:
        return OffsetIndex(self.redis)

    @cached_property
    def store(self) -> CheckpointStore:
        return CheckpointStore(self.redis)

    @cached_property
    def reader(self) -> PartitionReader:
        return PartitionReader(self.region, self.settings.timeout_s)

    @cached_property
    def positions(self) -> RegionPositions:
        return RegionPositions(self.index, self.reader, self.settings.count_limit)

    def close(self) -> None:
        if "reader" in self.__dict__:
            self.reader.close()
            del self.__dict__["reader"]
            self.__dict__.pop("positions", None)
        if "redis" in self.__dict__:
            self.redis.close()


@contextmanager
def redis_errors(region: Region) -> Iterator[None]:
    """A Redis failure as RegionUnreachable naming the region and its URL."""
    try:
        yield
    except redis.RedisError as exc:
        raise RegionUnreachable(f"the Redis of region {region.name} ({mask_url_password(region.redis)}) failed: "
                                f"{exc}") from None
