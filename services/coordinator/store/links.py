"""Links, validated against the registered regions and each other before they are written."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from amity.coordinator.errors import AlreadyExistsError, InvalidRequestError, NotFoundError
from amity.coordinator.keys import Keys
from amity.coordinator.link_checks import first_collision, unknown_regions
from amity.coordinator.schemas.links import LinkPublic
from amity.links import Link


def not_found(link_id: str) -> NotFoundError:
    return NotFoundError(f"link {link_id!r} does not exist (GET /v1/links, or `amity link list`, shows those that do)")


class LinkStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def all(self) -> dict[str, LinkPublic]:
        return _decode_all(await self._redis.hgetall(self._keys.links))

    async def get(self, link_id: str) -> LinkPublic:
        raw = await self._redis.hget(self._keys.links, link_id)
        if raw is None:
            raise not_found(link_id)
        return LinkPublic.model_validate_json(raw)

    async def create(self, candidates: Sequence[tuple[str, Link]], actor: str,
                     keep_identical: bool = False) -> list[LinkPublic]:
        """Write all candidates or none; with `keep_identical` an existing identical link is not an error."""
        async def write(pipe: Pipeline) -> list[LinkPublic]:
            regions = set(await pipe.hkeys(self._keys.regions))
            stored = _decode_all(await pipe.hgetall(self._keys.links))
            links = {link_id: link.as_link() for link_id, link in stored.items()}
            result, accepted = [], []
            for link_id, link in candidates:
                if keep_identical and links.get(link_id) == link:
                    result.append(stored[link_id])
                    continue
                _check(link_id, link, regions, links)
                links[link_id] = link
                accepted.append(_public(link_id, link, actor))
                result.append(accepted[-1])
            pipe.multi()
            if accepted:
                pipe.hset(self._keys.links, mapping={link.id: link.model_dump_json() for link in accepted})
            return result

        return await self._redis.transaction(write, self._keys.regions, self._keys.links, value_from_callable=True)

    async def change(self, link_id: str, changed: Callable[[Link], Link], actor: str) -> LinkPublic:
        """Apply `changed` to the link and write it if it still passes every check."""
        async def write(pipe: Pipeline) -> LinkPublic:
            links = {i: link.as_link() for i, link in _decode_all(await pipe.hgetall(self._keys.links)).items()}
            if link_id not in links:
                raise not_found(link_id)
            link = changed(links.pop(link_id))
            _check(link_id, link, set(await pipe.hkeys(self._keys.regions)), links, new=False)
            public = _public(link_id, link, actor)
            pipe.multi()
            pipe.hset(self._keys.links, link_id, public.model_dump_json())
            return public

        return await self._redis.transaction(write, self._keys.regions, self._keys.links, value_from_callable=True)

    async def delete(self, link_id: str) -> None:
        if not await self._redis.hdel(self._keys.links, link_id):
            raise not_found(link_id)


def _check(link_id: str, link: Link, regions: set[str], others: dict[str, Link], new: bool = True) -> None:
    if new and link_id in others:
        raise AlreadyExistsError(f"link {link_id!r} already exists; give the new link another id, or change that one")
    unknown = unknown_regions(link, regions)
    if unknown:
        raise InvalidRequestError(f"link {link_id!r} names regions that are not registered: {unknown}; "
                      "register them first (amity region add)")
    reason = first_collision(link, others)
    if reason:
        raise InvalidRequestError(f"link {link_id!r} would write topics another link already writes: {reason}")


def _public(link_id: str, link: Link, actor: str) -> LinkPublic:
    return LinkPublic(id=link_id, **link.model_dump(), updated_at=datetime.now(UTC), updated_by=actor)


def _decode_all(raw: dict[str, str]) -> dict[str, LinkPublic]:
    return {link_id: LinkPublic.model_validate_json(value) for link_id, value in sorted(raw.items())}
