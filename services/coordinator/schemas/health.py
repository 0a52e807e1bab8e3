"""Liveness and readiness bodies."""

from pydantic import BaseModel

from amity.coordinator.schemas.regions import DependencyStatus


class Liveness(BaseModel):
    status: str = "ok"


class Readiness(BaseModel):
    status: str  # ready | not-ready
    dependencies: dict[str, DependencyStatus]
