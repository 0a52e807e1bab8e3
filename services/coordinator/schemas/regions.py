"""Region API models: the shared `Region` is what clients send; reads never carry secrets."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from amity.regions import KafkaSecurity, Region, RegionName, mask_url_password

RegionCreate = Region


class RegionUpdate(BaseModel):
    """Fields to change; `security` is replaced as a whole when given."""

    model_config = ConfigDict(extra="forbid")

    bootstrap: str | None = Field(default=None, min_length=1)
    redis: str | None = Field(default=None, min_length=1)
    security: KafkaSecurity | None = None

    def apply(self, region: Region) -> Region:
        """The updated region, validated as a whole (raises pydantic.ValidationError)."""
        changes = self.model_dump(exclude_none=True)
        if self.security is not None:
            changes["security"] = self.security
        return Region.model_validate({**dict(region), **changes})


class Status(StrEnum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"


class DependencyStatus(BaseModel):
    ok: bool
    latency_ms: float | None = None
    error: str | None = None


class RegionHealth(BaseModel):
    status: Status
    kafka: DependencyStatus | None = None
    redis: DependencyStatus | None = None
    checked_at: datetime | None = None


UNCHECKED = RegionHealth(status=Status.UNKNOWN)


class KafkaSecurityPublic(BaseModel):
    """Kafka client security without the password: only whether one is stored."""

    security_protocol: str
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password_set: bool = False
    ssl_ca_location: str | None = None

    @classmethod
    def of(cls, security: KafkaSecurity) -> "KafkaSecurityPublic":
        return cls(**security.model_dump(exclude={"sasl_password"}), sasl_password_set=bool(security.sasl_password))


class RegionPublic(BaseModel):
    name: RegionName
    bootstrap: str
    redis: str = Field(description="Redis URL, any password replaced by ***")
    security: KafkaSecurityPublic
    health: RegionHealth = UNCHECKED

    @classmethod
    def of(cls, region: Region, health: RegionHealth | None = None) -> "RegionPublic":
        return cls(name=region.name, bootstrap=region.bootstrap, redis=mask_url_password(region.redis),
                   security=KafkaSecurityPublic.of(region.security), health=health or UNCHECKED)


class RegionDeleted(BaseModel):
    name: RegionName
    links_deleted: list[str] = Field(default_factory=list, description="Links removed with it (force=true)")


class KafkaSecurityRevealed(KafkaSecurity):
    """Security settings whose password is written out: for the worker assignment only."""

    @field_serializer("sasl_password", when_used="json")
    def _reveal(self, password: object) -> str | None:
        return password.get_secret_value() if password is not None else None  # type: ignore[attr-defined]


class RegionConnection(Region):
    """Everything a worker needs to connect to a region, secrets included."""

    security: KafkaSecurityRevealed = Field(default_factory=KafkaSecurityRevealed)

    @classmethod
    def of(cls, region: Region) -> "RegionConnection":
        security = KafkaSecurityRevealed(**dict(region.security))
        return cls(name=region.name, bootstrap=region.bootstrap, redis=region.redis, security=security)
