"""Conflict rules: which policy resolves concurrent writes to which topics.

A rule's `topic` made only of the characters Kafka allows in topic names
([a-zA-Z0-9._-]) is an exact name, so `orders.v1` means that topic and nothing
else; anything else is a regular expression matched against the whole name.
An exact name beats every pattern; among patterns the first in the list wins.
"""

import re
from enum import StrEnum
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from amity.ordering import OrderingField
from amity.regions import RegionName

TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
MAX_TOPIC_PATTERN = 1000  # characters of a rule's topic or pattern: what the API's queries can name again
MAX_PRIORITY_REGIONS = 1024


class Policy(StrEnum):
    LWW = "lww"  # highest hybrid timestamp wins
    TIMESTAMP = "timestamp"  # highest value of a field of the record wins
    REGION_PRIORITY = "region-priority"  # causally newer wins, then the region listed first
    VECTOR = "vector"  # causally newer wins; concurrent writes go to the fallback and are recorded
    NONE = "none"  # every record is applied as it arrives: no resolution


class Fallback(StrEnum):
    """What decides between concurrent writes under the vector policy."""

    LWW = "lww"
    REGION_PRIORITY = "region-priority"


class FirstHop(StrEnum):
    """How the mirror stamps a plain Kafka client's record at its first hop out of its region (docs/conflicts.md)."""

    STATE = "state"  # from the region's version state: above every version of the key the region has seen
    TIMESTAMP = "timestamp"  # from the record's timestamp alone: (timestamp ms, 0), no Redis work per record


class ConflictRule(BaseModel):
    """The policy for the topics one `topic` name or pattern selects."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1, max_length=MAX_TOPIC_PATTERN,
                       description="Exact topic name, or a regex matched against the whole name")
    policy: Policy = Policy.LWW
    field: str | None = Field(
        default=None, description="timestamp policy: 'timestamp', 'header:<name>' or 'json:<dotted.path>'"
    )
    regions: tuple[RegionName, ...] = Field(
        default=(), max_length=MAX_PRIORITY_REGIONS, description="region-priority: regions, highest priority first"
    )
    fallback: Fallback | None = Field(default=None, description="vector: how concurrent writes are decided")
    max_skew_ms: int = Field(default=60_000, gt=0, description="Refuse timestamps further ahead of the local clock")
    first_hop: FirstHop = Field(
        default=FirstHop.STATE,
        description="lww and timestamp: stamp plain clients' records from the region's state or from their "
                    "timestamp alone (cheaper, weaker: docs/conflicts.md)")

    @field_validator("topic")
    @classmethod
    def _compilable(cls, topic: str) -> str:
        try:
            re.compile(topic)
        except re.error as exc:
            raise ValueError(f"topic pattern {topic!r} is not a valid regular expression: {exc}") from None
        return topic

    @field_validator("field")
    @classmethod
    def _readable(cls, field: str | None) -> str | None:
        if field is not None:
            OrderingField.parse(field)
        return field

    @field_validator("regions")
    @classmethod
    def _distinct(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({region for region in regions if regions.count(region) > 1})
        if repeated:
            raise ValueError(f"regions {repeated} are listed more than once")
        return regions

    @model_validator(mode="after")
    def _settings_fit_policy(self) -> "ConflictRule":
        wanted = self._settings_wanted()
        given = {name for name in ("field", "regions", "fallback") if getattr(self, name)}
        if wanted["field"] and self.field is None:
            raise ValueError(f"policy timestamp needs `field` (topic {self.topic!r})")
        if wanted["regions"] and not self.regions:
            raise ValueError(f"{self._what()} needs `regions`, highest priority first (topic {self.topic!r})")
        unused = sorted(name for name in given if not wanted[name])
        if unused:
            raise ValueError(f"{self._what()} does not use {', '.join(unused)} (topic {self.topic!r})")
        if self.first_hop is FirstHop.TIMESTAMP and self.policy not in (Policy.LWW, Policy.TIMESTAMP):
            raise ValueError(f"first_hop timestamp is for policies lww and timestamp: {self._what()} orders by "
                             f"version vectors, which only the region's state can give (topic {self.topic!r})")
        return self

    def _settings_wanted(self) -> dict[str, bool]:
        vector_by_priority = self.policy is Policy.VECTOR and self.fallback is Fallback.REGION_PRIORITY
        return {
            "field": self.policy is Policy.TIMESTAMP,
            "regions": self.policy is Policy.REGION_PRIORITY or vector_by_priority,
            "fallback": self.policy is Policy.VECTOR,
        }

    def _what(self) -> str:
        fallback = f" with fallback {self.fallback}" if self.policy is Policy.VECTOR and self.fallback else ""
        return f"policy {self.policy}{fallback}"

    @property
    def is_exact(self) -> bool:
        """True when `topic` names one topic rather than a pattern."""
        return bool(TOPIC_NAME.fullmatch(self.topic))

    @cached_property
    def ordering_field(self) -> OrderingField | None:
        """The parsed `field`, for the timestamp policy."""
        return OrderingField.parse(self.field) if self.field else None

    @cached_property
    def priorities(self) -> dict[str, int]:
        """Region to priority, larger wins; a region not listed has priority 0."""
        return {region: len(self.regions) - index for index, region in enumerate(self.regions)}

    @property
    def effective_fallback(self) -> Fallback:
        """The vector policy's fallback, lww when not set."""
        return self.fallback or Fallback.LWW


class RuleSet(BaseModel):
    """Every conflict rule, looked up by topic once and then from a cache."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[ConflictRule, ...] = ()
    _by_topic: dict[str, ConflictRule | None] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _no_shadowed_rules(self) -> "RuleSet":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.topic in seen:
                raise ValueError(f"two conflict rules name topic {rule.topic!r}; the second would never apply")
            seen.add(rule.topic)
        return self

    @cached_property
    def _exact(self) -> dict[str, ConflictRule]:
        return {rule.topic: rule for rule in self.rules if rule.is_exact}

    @cached_property
    def _patterns(self) -> tuple[tuple[re.Pattern[str], ConflictRule], ...]:
        return tuple((re.compile(rule.topic), rule) for rule in self.rules if not rule.is_exact)

    def rule_for(self, topic: str) -> ConflictRule | None:
        """The rule for `topic`, or None when no rule names it (its records are not resolved)."""
        try:
            return self._by_topic[topic]
        except KeyError:
            found = self._exact.get(topic) or next((r for p, r in self._patterns if p.fullmatch(topic)), None)
            self._by_topic[topic] = found
            return found
