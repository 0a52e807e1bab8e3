"""Registered regions (secrets included) and their last health check."""

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from amity.coordinator.errors import AlreadyExistsError, ChangedMeanwhileError, InUseError, NotFoundError
from amity.coordinator.keys import Keys
from amity.coordinator.schemas.links import LinkPublic
from amity.coordinator.schemas.regions import RegionConnection, RegionHealth
from amity.coordinator.schemas.rules import RuleSetPublic
from amity.regions import Region


def encode(region: Region) -> str:
    """JSON with the SASL password written out: the store is the one place that keeps it."""
    return RegionConnection.of(region).model_dump_json()


def decode(raw: str) -> Region:
    return Region.model_validate_json(raw)


def not_registered(name: str) -> NotFoundError:
    return NotFoundError(f"region {name!r} is not registered "
                         "(GET /v1/regions, or `amity region list`, shows those that are)")


def already_registered(name: str) -> AlreadyExistsError:
    return AlreadyExistsError(f"region {name!r} is already registered; change it with PATCH /v1/regions/{name}, "
                         "or remove it first (amity region rm)")


class RegionStore:
    # KEYS[1] - regions hash, KEYS[2] - health hash; ARGV[1] - region name, ARGV[2] - health JSON.
    # Writes the health only while the region is registered, so a check racing a delete leaves nothing behind.
    # Returns 1 when written, 0 when the region is gone.
    SET_HEALTH = """
    if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
        return 1
    end
    return 0
    """

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._set_health = redis.register_script(self.SET_HEALTH)

    async def all(self) -> dict[str, Region]:
        raw = await self._redis.hgetall(self._keys.regions)
        return {name: decode(value) for name, value in sorted(raw.items())}

    async def get(self, name: str) -> Region:
        raw = await self._redis.hget(self._keys.regions, name)
        if raw is None:
            raise not_registered(name)
        return decode(raw)

    async def require_new(self, name: str) -> None:
        if await self._redis.hexists(self._keys.regions, name):
            raise already_registered(name)

    async def create(self, region: Region, health: RegionHealth | None) -> None:
        await self._write(region, health, exists=False)

    async def replace(self, region: Region, health: RegionHealth | None, was: Region) -> None:
        """New settings, in place of `was`; the health check that went with them, or none (unknown until the
        monitor checks). Refused if the region is no longer `was`: a change made while this one was checked."""
        await self._write(region, health, exists=True, was=was)

    async def _write(self, region: Region, health: RegionHealth | None, exists: bool,
                     was: Region | None = None) -> None:
        async def write(pipe: Pipeline) -> None:
            stored = await pipe.hget(self._keys.regions, region.name)
            if (stored is not None) != exists:
                raise not_registered(region.name) if exists else already_registered(region.name)
            if was is not None and decode(stored) != was:
                raise ChangedMeanwhileError(f"region {region.name!r} was changed by another request while this "
                                            "one was checked; read it again and retry")
            pipe.multi()
            pipe.hset(self._keys.regions, region.name, encode(region))
            if health is None:
                pipe.hdel(self._keys.health, region.name)
            else:
                pipe.hset(self._keys.health, region.name, health.model_dump_json())

        await self._redis.transaction(write, self._keys.regions)

    async def delete(self, name: str, force: bool) -> list[str]:
        """Remove a region; with `force` also the links using it (returned), otherwise refuse while any do.
        Refused while a conflict rule names it (region-priority): such a rule could not be saved again."""
        async def remove(pipe: Pipeline) -> list[str]:
            if not await pipe.hexists(self._keys.regions, name):
                raise not_registered(name)
            links = await pipe.hgetall(self._keys.links)
            using = sorted(link_id for link_id, raw in links.items()
                           if name in _ends(LinkPublic.model_validate_json(raw)))
            if using and not force:
                raise InUseError(f"region {name!r} is used by links {using}: remove those links first, "
                            "or delete with force=true to remove them too")
            rules = await pipe.get(self._keys.rules)
            naming = [rule.topic for rule in (RuleSetPublic.model_validate_json(rules).rules if rules else ())
                      if name in rule.regions]
            if naming:
                raise InUseError(f"region {name!r} is named by the conflict rules for {naming}: change or remove "
                                 "those rules first (force removes links, never rules)")
            pipe.multi()
            pipe.hdel(self._keys.regions, name)
            pipe.hdel(self._keys.health, name)
            if using:
                pipe.hdel(self._keys.links, *using)
            return using

        return await self._redis.transaction(remove, self._keys.regions, self._keys.links, self._keys.rules,
                                             value_from_callable=True)

    async def health(self) -> dict[str, RegionHealth]:
        raw = await self._redis.hgetall(self._keys.health)
        return {name: RegionHealth.model_validate_json(value) for name, value in raw.items()}

    async def set_health(self, name: str, health: RegionHealth) -> None:
        await self._set_health(keys=[self._keys.regions, self._keys.health], args=[name, health.model_dump_json()])


def _ends(link: LinkPublic) -> tuple[str, str]:
    return link.source, link.destination
