"""Batch conflict resolution for the mirror: what a destination region does with each arriving record.

The mirror calls, per consumed batch of a link A -> B:

1. `Stamper(A's state).stamp(batch)`: records written in A by plain Kafka
   clients (no hybrid timestamp yet) get their one stamp, shared by every link
   out of A, and become A's held versions.
2. `Resolver(B's state).resolve(batch)`: each record's version is decided
   against the version B holds, in batch order, in one Redis call.

Each step is one Redis round trip per batch, whatever its size. The policy
work (ranks, ordering fields, the skew guard) happens here in Python; the
Redis scripts compare opaque rank bytes (amity.state).

Redelivery: `DUPLICATE` means the held version is the arriving one, and the
record is written again. Redis is not in the Kafka transaction: a version
applied here whose write then failed or aborted comes back on redelivery as a
duplicate, and writing it again is what keeps it from being lost. A version
written twice is harmless: every region ranks both copies equally.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import redis

from amity import state as codes
from amity.clock import ClockSkewError, TimestampRangeError, pack, physical_ms, wall_clock_ms
from amity.errors import AmityError
from amity.headers import Provenance
from amity.ordering import Headers, MissingOrderingField
from amity.policies import InvalidVersion, Version, rank_bytes
from amity.rules import ConflictRule, Policy, RuleSet
from amity.state import Claim, StampRequest, StateSettings, VersionState, held_version, may_expire
from amity.vectors import EMPTY, Vector


@dataclass(frozen=True, slots=True)
class Incoming:
    """One record to stamp or resolve: what the router read from the record and its provenance header.

    `topic` names the rule and the state: the topic's name in the region whose
    state is used (the same in every region under identity naming, the only
    naming under which regions write the same topic). `partition` and `offset`
    are the record's coordinates in its origin region, used to give a first-hop
    record one stamp whichever link reads it.
    """

    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    headers: Headers
    origin: str
    timestamp_ms: int  # at the origin: the `timestamp` ordering field
    hlc: int | None = None  # None: not stamped yet
    vector: Vector | None = None
    partition: int = 0
    offset: int = 0

    @classmethod
    def of(cls, message, provenance: Provenance, topic: str | None = None) -> "Incoming":
        """A mirrored record (anything with key(), value(), headers(), topic()) and its decoded provenance."""
        p = provenance
        return cls(topic or message.topic(), message.key(), message.value(), message.headers(), p.origin,
                   p.timestamp_ms, p.hlc, p.vector, p.partition, p.offset)

    def stamped(self, hlc: int, vector: Vector) -> "Incoming":
        """This record with its first-hop stamp."""
        return Incoming(self.topic, self.key, self.value, self.headers, self.origin, self.timestamp_ms, hlc, vector,
                        self.partition, self.offset)

    @classmethod
    def first_hop(cls, message, origin: str, topic: str | None = None) -> "Incoming":
        """A record written in `origin` by a plain Kafka client, read there: not stamped yet."""
        return cls(topic or message.topic(), message.key(), message.value(), message.headers(), origin,
                   max(message.timestamp()[1], 0), None, None, message.partition(), message.offset())


class Verdict(StrEnum):
    APPLY = "apply"  # ranks above the held version: write it
    STALE = "stale"  # ranks below: drop it, count it
    DUPLICATE = "duplicate"  # is the held version: write it again (see the module docstring)
    CONFLICT_APPLIED = "conflict-applied"  # vector policy, concurrent, wins: write it, record both
    CONFLICT_STALE = "conflict-stale"  # vector policy, concurrent, loses: drop it, record both
    PASS = "pass"  # not resolved (no rule, policy none, keyless): write it
    DEAD = "dead"  # cannot be ordered safely: dead-letter it with `reason`


class Reason(StrEnum):
    """Why a record passed or went dead; stable, for metric labels and dead-letter headers."""

    NO_RULE = "no-rule"
    POLICY_NONE = "policy-none"
    KEYLESS = "keyless"
    CLOCK_SKEW = "clock-skew"
    UNSTAMPED = "unstamped"
    MISSING_ORDERING_FIELD = "missing-ordering-field"
    INVALID_VERSION = "invalid-version"
    POLICY_CHANGED = "policy-changed"


_WRITES = frozenset({Verdict.APPLY, Verdict.DUPLICATE, Verdict.CONFLICT_APPLIED, Verdict.PASS})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with one record. Common outcomes are shared instances: compare `verdict`, not identity."""

    verdict: Verdict
    reason: Reason | None = None
    detail: str = ""
    held: Version | None = None  # conflicts: the version the record was decided against

    @property
    def writes(self) -> bool:
        """True when the record goes to the destination topic."""
        return self.verdict in _WRITES

    @property
    def is_conflict(self) -> bool:
        return self.verdict in (Verdict.CONFLICT_APPLIED, Verdict.CONFLICT_STALE)


APPLIED = Outcome(Verdict.APPLY)
STALE = Outcome(Verdict.STALE)
DUPLICATE = Outcome(Verdict.DUPLICATE)
PASS_NO_RULE = Outcome(Verdict.PASS, Reason.NO_RULE)
PASS_POLICY_NONE = Outcome(Verdict.PASS, Reason.POLICY_NONE)
PASS_KEYLESS = Outcome(Verdict.PASS, Reason.KEYLESS)
_SIMPLE = {codes.APPLY: APPLIED, codes.STALE: STALE, codes.DUPLICATE: DUPLICATE}
_CONFLICTS = {codes.CONFLICT_APPLIED: Verdict.CONFLICT_APPLIED, codes.CONFLICT_STALE: Verdict.CONFLICT_STALE}


class Unstamped(AmityError):
    """A record of a resolved topic carries no hybrid timestamp: it was never stamped."""


def dead(reason: Reason, detail: str) -> Outcome:
    return Outcome(Verdict.DEAD, reason, detail)


def _dead_from(exc: Exception) -> Outcome:
    if isinstance(exc, ClockSkewError):
        return dead(Reason.CLOCK_SKEW, str(exc))
    if isinstance(exc, MissingOrderingField):
        return dead(Reason.MISSING_ORDERING_FIELD, str(exc))
    if isinstance(exc, Unstamped):
        return dead(Reason.UNSTAMPED, str(exc))
    return dead(Reason.INVALID_VERSION, str(exc))


_DEAD_ERRORS = (ClockSkewError, TimestampRangeError, MissingOrderingField, Unstamped, InvalidVersion)


class SkewGuard:
    """The skew guard of `HybridClock.observe`, with each rule's own bound and one wall-clock read per batch.

    A timestamp whose physical part is more than the rule's max_skew_ms ahead of
    the local wall clock is refused: accepting it would let the fast region win
    every race and drag every region's clock forward.
    """

    __slots__ = ("_now_ms", "now")

    def __init__(self, now_ms: Callable[[], int] = wall_clock_ms) -> None:
        self._now_ms = now_ms
        self.now = now_ms()

    def start_batch(self) -> None:
        self.now = self._now_ms()

    def check(self, rule: ConflictRule, hlc: int) -> None:
        """Raise ClockSkewError when `hlc` is further ahead of the batch's wall-clock time than the rule allows."""
        remote_ms = physical_ms(hlc)
        if remote_ms > self.now + rule.max_skew_ms:
            raise ClockSkewError(remote_ms, self.now, rule.max_skew_ms)


def _rule_cache(rules: RuleSet) -> Callable[[str], ConflictRule | None]:
    """`rules.rule_for` memoised in a plain dict for one batch: the same few topics recur per record."""
    found: dict[str, ConflictRule | None] = {}

    def rule_for(topic: str) -> ConflictRule | None:
        try:
            return found[topic]
        except KeyError:
            rule = found[topic] = rules.rule_for(topic)
            return rule

    return rule_for


def passing(rule: ConflictRule | None, key: bytes | None) -> Outcome | None:
    """The PASS outcome of a record that is not resolved, None for one that is."""
    if rule is None:
        return PASS_NO_RULE
    if rule.policy is Policy.NONE:
        return PASS_POLICY_NONE
    if key is None:
        return PASS_KEYLESS
    return None


def version_of(rule: ConflictRule, record: Incoming, hlc: int) -> Version:
    """The version a record claims: its stamp, its tombstone flag and (timestamp policy) its ordering field."""
    deleted = record.value is None
    field = None
    if rule.policy is Policy.TIMESTAMP and not deleted:
        field = rule.ordering_field.read(record.timestamp_ms, record.headers, record.value)
    return Version(hlc, record.origin, record.vector or EMPTY, deleted, field)


def claim(state: VersionState, rule: ConflictRule, state_key: bytes, version: Version) -> Claim:
    """What the apply script needs to decide `version` of the key whose state is at `state_key`."""
    ttl = state.settings.tombstone_ttl_ms if version.deleted and may_expire(rule) else 0
    return Claim(state_key, rank_bytes(rule, version), version.hlc, version.vector, ttl, rule.policy is Policy.VECTOR)


class Resolver:
    """Decides arriving records against one region's version state."""

    def __init__(self, client: redis.Redis, rules: RuleSet, region: str, *,
                 now_ms: Callable[[], int] = wall_clock_ms, settings: StateSettings | None = None,
                 expected_epoch: str | None = None) -> None:
        self.region = region
        self.rules = rules
        self.state = VersionState(client, settings, expected_epoch)
        self.guard = SkewGuard(now_ms)

    def resolve(self, batch: Sequence[Incoming]) -> list[Outcome]:
        """One outcome per record, in batch order; raises StateLost (and changes nothing) on a lost state."""
        outcomes: list[Outcome | None] = [None] * len(batch)
        claims: list[Claim] = []
        rules: list[ConflictRule] = []
        where: list[int] = []
        rule_for = _rule_cache(self.rules)
        self.guard.start_batch()
        for index, record in enumerate(batch):
            rule = rule_for(record.topic)
            outcome = passing(rule, record.key)
            if outcome is None:
                try:
                    claims.append(self._claim(rule, record))
                except _DEAD_ERRORS as exc:
                    outcome = _dead_from(exc)
                else:
                    rules.append(rule)
                    where.append(index)
            outcomes[index] = outcome
        applied = self.state.apply(claims)
        for position, code in enumerate(applied.codes):
            outcomes[where[position]] = self._outcome(code, rules[position], applied.held.get(position))
        return outcomes

    def resume(self) -> str:
        """Accept the state's current epoch after a rebuild; StateLost while the rebuild has not finished."""
        return self.state.adopt()

    def _claim(self, rule: ConflictRule, record: Incoming) -> Claim:
        hlc = record.hlc
        if hlc is None:
            raise Unstamped(f"a record from {record.origin} in {record.topic} has no hybrid timestamp; "
                            f"topics under policy {rule.policy} need every record stamped at its first hop")
        self.guard.check(rule, hlc)
        return claim(self.state, rule, self.state.state_key(record.topic, record.key), version_of(rule, record, hlc))

    def _outcome(self, code: str, rule: ConflictRule, held: tuple[bytes, Vector] | None) -> Outcome:
        simple = _SIMPLE.get(code)
        if simple is not None:
            return simple
        if code in _CONFLICTS:
            return Outcome(_CONFLICTS[code], held=held_version(rule, *held))
        return dead(Reason.POLICY_CHANGED,
                    f"the key's state in {self.region} was written under another policy or layout than "
                    f"{rule.policy}; a policy change needs a barrier (docs/conflicts.md)")


class Stamper:
    """Stamps records written in its region by plain Kafka clients, at their first hop out of it.

    A source record gets one stamp, whichever link reads it first: the stamp is
    remembered in the region's state under (topic, partition, offset) for
    `stamp_ttl_ms`, and every other link gets the same one. The first stamp
    also becomes the region's held version (the record is already in the topic).
    """

    def __init__(self, client: redis.Redis, rules: RuleSet, region: str, *,
                 now_ms: Callable[[], int] = wall_clock_ms, settings: StateSettings | None = None,
                 expected_epoch: str | None = None) -> None:
        self.region = region
        self.rules = rules
        self.state = VersionState(client, settings, expected_epoch)
        self.guard = SkewGuard(now_ms)

    def stamp(self, batch: Sequence[Incoming]) -> list[Incoming | Outcome]:
        """Each record stamped, unchanged (nothing to stamp), or a DEAD outcome; two Redis calls at most."""
        results: list[Incoming | Outcome] = list(batch)
        requests: list[StampRequest] = []
        pending: list[tuple[int, ConflictRule, int | None]] = []  # (index, rule, ordering field)
        rule_for = _rule_cache(self.rules)
        self.guard.start_batch()
        for index, record in enumerate(batch):
            rule = rule_for(record.topic)
            if not self._needs_stamp(rule, record):
                continue
            try:
                floor = pack(record.timestamp_ms, 0)
                self.guard.check(rule, floor)
                field = version_of(rule, record, floor).field  # unorderable writes are refused before stamping
            except _DEAD_ERRORS as exc:
                results[index] = _dead_from(exc)
                continue
            requests.append(StampRequest(self.state.state_key(record.topic, record.key), floor,
                                         (record.topic, record.partition, record.offset)))
            pending.append((index, rule, field))
        fresh: list[Claim] = []
        for request, (index, rule, field), stamp in zip(requests, pending, self.state.stamp(requests, self.region)):
            record = batch[index]
            results[index] = record.stamped(stamp.hlc, stamp.vector)
            if stamp.fresh:
                version = Version(stamp.hlc, self.region, stamp.vector, record.value is None, field)
                fresh.append(claim(self.state, rule, request.key, version))
        self.state.apply(fresh)
        return results

    def resume(self) -> str:
        return self.state.adopt()

    def _needs_stamp(self, rule: ConflictRule | None, record: Incoming) -> bool:
        return record.hlc is None and record.origin == self.region and passing(rule, record.key) is None
