"""A link: which topics flow from one region to another, and under which names."""

import re
from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from amity.regions import RegionName


class Naming(StrEnum):
    """How a source topic is named in the destination."""

    IDENTITY = "identity"  # same name: active-active
    PREFIX = "prefix"  # `{source}.{topic}`: active-passive and aggregation, as MirrorMaker 2 names them


class Delivery(StrEnum):
    AT_LEAST_ONCE = "at-least-once"
    EXACTLY_ONCE = "exactly-once"


DEFAULT_EXCLUDES = (r"__.*", r".*\.internal", r".*\.conflicts", r".*\.dlq", r"_.*")


def compilable_patterns(patterns: tuple[str, ...]) -> tuple[str, ...]:
    """`patterns` unchanged, or a ValueError naming the first one that is not a regular expression, or saying why
    they do not combine into the one expression a link matches with."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"topic pattern {pattern!r} is not a valid regular expression: {exc}") from None
    try:
        re.compile(combined(patterns))
    except re.error as exc:
        raise ValueError(f"topic patterns {list(patterns)!r} cannot be matched together ({exc}): a link joins them "
                         f"into one expression, so give flags scoped, as (?i:orders), and each group name "
                         f"once") from None
    return patterns


def combined(patterns: tuple[str, ...]) -> str:
    """One expression that matches what any of `patterns` matches."""
    return "|".join(f"(?:{p})" for p in patterns)


class Link(BaseModel):
    """One directed replication flow, source region to destination region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: RegionName
    destination: RegionName
    include: tuple[str, ...] = Field(default=(".*",), description="Regexes (full match) of topics to replicate")
    exclude: tuple[str, ...] = Field(default=DEFAULT_EXCLUDES, description="Regexes (full match) of topics to skip")
    naming: Naming = Naming.IDENTITY
    delivery: Delivery = Delivery.AT_LEAST_ONCE
    paused: bool = False

    @property
    def name(self) -> str:
        return f"{self.source}-to-{self.destination}"

    @field_validator("include", "exclude")
    @classmethod
    def _compilable(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        return compilable_patterns(patterns)

    @model_validator(mode="after")
    def _not_to_itself(self) -> "Link":
        if self.source == self.destination:
            raise ValueError(f"a link cannot replicate region {self.source!r} into itself")
        return self

    @cached_property
    def _include(self) -> re.Pattern[str]:
        return re.compile(combined(self.include))

    @cached_property
    def _exclude(self) -> re.Pattern[str] | None:
        return re.compile(combined(self.exclude)) if self.exclude else None

    def selects(self, topic: str) -> bool:
        """True when `topic` in the source region is replicated by this link."""
        if self._exclude is not None and self._exclude.fullmatch(topic):
            return False
        if self.naming is Naming.PREFIX and self._is_remote_copy(topic):
            return False
        return bool(self._include.fullmatch(topic))

    def destination_topic(self, topic: str) -> str:
        """The name `topic` gets in the destination region."""
        return topic if self.naming is Naming.IDENTITY else f"{self.source}.{topic}"

    def _is_remote_copy(self, topic: str) -> bool:
        """A prefixed topic is itself a copy from elsewhere; copying it on would loop A.B.A.topic."""
        return topic.startswith(f"{self.destination}.")
