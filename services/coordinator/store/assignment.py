"""The current assignment of links to workers, and its generation number.

The generation goes up whenever anything a worker acts on changes: which links
it runs, any link's settings, or any region's connection settings. Workers
compare generations and reconfigure only when it moved.
"""

import hashlib
import json

from pydantic import BaseModel, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from amity.coordinator.assignment import owners, spread
from amity.coordinator.keys import Keys
from amity.coordinator.schemas.links import LinkPublic
from amity.coordinator.store.regions import decode as decode_region
from amity.regions import Region


class AssignmentState(BaseModel):
    generation: int = 0
    fingerprint: str = ""
    workers: dict[str, list[str]] = Field(default_factory=dict)


class Snapshot(BaseModel):
    """The assignment with the links and regions it was computed from."""

    state: AssignmentState
    links: dict[str, LinkPublic]
    regions: dict[str, Region]


class AssignmentStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def current(self) -> AssignmentState:
        raw = await self._redis.get(self._keys.assignment)
        return AssignmentState.model_validate_json(raw) if raw else AssignmentState()

    async def refresh(self, live_workers: list[str]) -> Snapshot:
        """Recompute the assignment for these live workers; a new generation only if anything changed."""
        async def write(pipe: Pipeline) -> Snapshot:
            raw = await pipe.get(self._keys.assignment)
            state = AssignmentState.model_validate_json(raw) if raw else AssignmentState()
            raw_links = await pipe.hgetall(self._keys.links)
            raw_regions = await pipe.hgetall(self._keys.regions)
            links = {i: LinkPublic.model_validate_json(v) for i, v in sorted(raw_links.items())}
            active = [link_id for link_id, link in links.items() if not link.paused]
            mapping = spread(active, live_workers, owners(state.workers))
            fingerprint = _fingerprint(mapping, raw_links, raw_regions)
            if fingerprint != state.fingerprint:
                state = AssignmentState(generation=state.generation + 1, fingerprint=fingerprint,
                                        workers={w: list(ls) for w, ls in mapping.items()})
                pipe.multi()
                pipe.set(self._keys.assignment, state.model_dump_json())
            regions = {name: decode_region(value) for name, value in sorted(raw_regions.items())}
            return Snapshot(state=state, links=links, regions=regions)

        watched = (self._keys.assignment, self._keys.links, self._keys.regions)
        return await self._redis.transaction(write, *watched, value_from_callable=True)


def _fingerprint(mapping: dict[str, tuple[str, ...]], links: dict[str, str], regions: dict[str, str]) -> str:
    # updated_at/updated_by change with every write, so a no-op rewrite of a link also bumps the generation:
    # harmless, workers just re-read the same settings.
    material = json.dumps([mapping, sorted(links.items()), sorted(regions.items())], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()
