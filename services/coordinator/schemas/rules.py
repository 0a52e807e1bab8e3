"""Conflict rule API models around the shared `ConflictRule`."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from amity.rules import ConflictRule


class RuleSetPublic(BaseModel):
    """Every rule in the order they are matched, and the version of this set."""

    version: int = Field(ge=0, description="Goes up by one with every change")
    rules: list[ConflictRule]


class Action(StrEnum):
    SET = "set"
    DELETE = "delete"


class RuleChange(BaseModel):
    version: int = Field(ge=1, description="The rule set version this change produced")
    at: datetime
    actor: str = Field(description="Token subject, or anonymous when authentication is off")
    action: Action
    topic: str
    before: ConflictRule | None = None
    after: ConflictRule | None = None


class RuleHistory(BaseModel):
    changes: list[RuleChange] = Field(description="Newest first")


class RuleMatch(BaseModel):
    """The rule that applies to one topic, if any."""

    topic: str
    rule: ConflictRule | None
    version: int
