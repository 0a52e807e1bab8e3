"""/v1/regions: register, list, show, change and remove regions."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from amity.coordinator.deps import Actor, CoordinatorDep, Reader
from amity.coordinator.probes import require_allowed_hosts, require_reachable
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES
from amity.coordinator.schemas.regions import RegionCreate, RegionDeleted, RegionHealth, RegionPublic, RegionUpdate
from amity.regions import REGION_NAME, Region

router = APIRouter(prefix="/v1/regions", tags=["regions"], responses=PROBLEM_RESPONSES)
Name = Annotated[str, Path(pattern=REGION_NAME.pattern, description="Region name")]
Check = Annotated[bool, Query(description="Check that the region's Kafka and Redis answer before saving")]


@router.get("", dependencies=[Reader])
async def list_regions(c: CoordinatorDep) -> list[RegionPublic]:
    regions, health = await c.regions.all(), await c.regions.health()
    return [RegionPublic.of(region, health.get(name)) for name, region in regions.items()]


@router.get("/{name}", dependencies=[Reader])
async def get_region(name: Name, c: CoordinatorDep) -> RegionPublic:
    region = await c.regions.get(name)
    return RegionPublic.of(region, (await c.regions.health()).get(name))


@router.post("", status_code=201)
async def register_region(region: RegionCreate, c: CoordinatorDep, _: Actor, check: Check = True) -> RegionPublic:
    """Register a region; unless check=false its Kafka and Redis must answer first."""
    await c.regions.require_new(region.name)  # before spending seconds on a check
    health = await _checked(c, region, check)
    await c.regions.create(region, health)
    return RegionPublic.of(region, health)


@router.patch("/{name}")
async def update_region(name: Name, update: RegionUpdate, c: CoordinatorDep, _: Actor,
                        check: Check = True) -> RegionPublic:
    was = await c.regions.get(name)
    region = update.apply(was)
    health = await _checked(c, region, check)
    await c.regions.replace(region, health, was)
    return RegionPublic.of(region, health)


@router.delete("/{name}")
async def delete_region(name: Name, c: CoordinatorDep, _: Actor,
                        force: Annotated[bool, Query(description="Also remove the links that use it")] = False
                        ) -> RegionDeleted:
    """Refused while links use the region, unless force=true, which removes those links too."""
    return RegionDeleted(name=name, links_deleted=await c.regions.delete(name, force))


async def _checked(c: CoordinatorDep, region: Region, check: bool) -> RegionHealth | None:
    require_allowed_hosts(region, c.settings.allowed_hosts)
    return await require_reachable(region, c.settings.probe_timeout_s) if check else None
