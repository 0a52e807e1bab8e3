"""Link API models: the shared `Link` plus an id, and the topology shortcuts."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amity.links import DEFAULT_EXCLUDES, Delivery, Link, Naming, compilable_patterns
from amity.regions import RegionName
from amity.stats import LinkId


class LinkCreate(Link):
    """A new link; `id` defaults to `{source}-to-{destination}`."""

    id: LinkId | None = None

    def link_id(self) -> str:
        return self.id or self.name

    def as_link(self) -> Link:
        return Link(**self.model_dump(exclude={"id"}))


class LinkUpdate(BaseModel):
    """Fields to change; pause and resume have their own endpoints."""

    model_config = ConfigDict(extra="forbid")

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    naming: Naming | None = None
    delivery: Delivery | None = None

    def apply(self, link: Link) -> Link:
        """The updated link, validated as a whole (raises pydantic.ValidationError)."""
        return Link.model_validate({**link.model_dump(), **self.model_dump(exclude_none=True)})


class LinkPublic(Link):
    id: LinkId
    updated_at: datetime | None = None
    updated_by: str | None = None

    def as_link(self) -> Link:
        return Link(**self.model_dump(exclude={"id", "updated_at", "updated_by"}))


class LinkOptions(BaseModel):
    """What every link a shortcut creates has in common."""

    model_config = ConfigDict(extra="forbid")

    include: tuple[str, ...] = (".*",)
    exclude: tuple[str, ...] = DEFAULT_EXCLUDES
    naming: Naming = Naming.IDENTITY
    delivery: Delivery = Delivery.AT_LEAST_ONCE

    @field_validator("include", "exclude")
    @classmethod
    def _compilable(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        return compilable_patterns(patterns)

    def between(self, source: str, destination: str) -> LinkCreate:
        """The link source -> destination with these options (raises pydantic.ValidationError)."""
        options = self.model_dump(include=set(LinkOptions.model_fields))
        return LinkCreate(source=source, destination=destination, **options)


def _distinct(regions: list[str]) -> list[str]:
    repeated = sorted({r for r in regions if regions.count(r) > 1})
    if repeated:
        raise ValueError(f"regions {repeated} are listed more than once")
    return regions


class MeshCreate(LinkOptions):
    """Links in both directions between every two of `regions` (active-active)."""

    regions: list[RegionName] = Field(min_length=2, max_length=64)

    _distinct_regions = field_validator("regions")(_distinct)


class HubDirection(StrEnum):
    BOTH = "both"
    TO_HUB = "to-hub"
    FROM_HUB = "from-hub"


class HubCreate(LinkOptions):
    """Links between `hub` and each spoke, none between spokes."""

    hub: RegionName
    spokes: list[RegionName] = Field(min_length=1, max_length=64)
    direction: HubDirection = HubDirection.BOTH

    _distinct_spokes = field_validator("spokes")(_distinct)


class ActivePassiveCreate(LinkOptions):
    """One link from the active region to its standby; names are prefixed by default, as MirrorMaker 2 does."""

    active: RegionName
    passive: RegionName
    naming: Naming = Naming.PREFIX


class LinksCreated(BaseModel):
    links: list[LinkPublic]


class TopicMapping(BaseModel):
    source_topic: str
    destination_topic: str


class LinkPlan(BaseModel):
    """What a link would replicate from the source's existing topics right now."""

    source: RegionName
    destination: RegionName
    topics: list[TopicMapping]
    skipped: list[str] = Field(description="Existing source topics the link does not select")
    problem: str | None = Field(default=None, description="Why creating this link would be refused, if it would")
