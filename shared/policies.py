"""Conflict policies as total orders on the versions of a key.

Every replica decides each arrival against the version it holds. Replicas
converge, whatever the arrival order, duplicates and delays, only when every
pairwise decision follows one total order: the winner is then the maximum of
the versions delivered, which no order of delivery changes. So each policy is
a `rank`, a tuple compared lexicographically, and `decide` compares ranks.
`vectors.compare` only classifies concurrent writes as conflicts; it never
decides one (a pairwise "dominance, else something else" rule is
intransitive: see docs/conflicts.md).

Stamping requirement, relied on by lww and vector with fallback lww: whoever
stamps a write first observes the key's state in its region (the merged vector
and the highest hybrid timestamp it has seen), so a version whose vector
dominates another's also has the higher hybrid timestamp.
"""

import struct
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from functools import lru_cache

from amity.clock import physical_ms
from amity.errors import AmityError
from amity.ordering import MissingOrderingField
from amity.rules import ConflictRule, Fallback, Policy
from amity.vectors import EMPTY, Order, Vector, compare, depth

ORIGIN_BYTES = 32

Rank = tuple[int | str | bool, ...]


class UnorderedPolicy(AmityError):
    """Policy `none` has no order: there is no rank to compute or compare."""


class InvalidVersion(AmityError):
    """A version cannot be ranked: its origin is not a region name of at most 32 ASCII characters."""


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a key: what a stamped record (write or tombstone) claims about itself."""

    hlc: int
    origin: str  # region that made the write
    vector: Vector = EMPTY
    deleted: bool = False  # a tombstone: the key's value is gone as of this version
    field: int | None = None  # timestamp policy's ordering value in ms; tombstones use their hlc's ms


class Decision(StrEnum):
    """What a replica does with an arriving version, given the one it holds."""

    APPLY = "apply"
    STALE = "stale"  # ranks below the held version: dropped and counted
    DUPLICATE = "duplicate"  # the held version again: a no-op
    CONFLICT_APPLIED = "conflict-applied"  # vector policy, concurrent, wins: applied and recorded
    CONFLICT_STALE = "conflict-stale"  # vector policy, concurrent, loses: dropped and recorded

    @property
    def applies(self) -> bool:
        """True when the arriving version replaces the held one."""
        return self in (Decision.APPLY, Decision.CONFLICT_APPLIED)

    @property
    def is_conflict(self) -> bool:
        """True when both versions belong in `<topic>.conflicts`."""
        return self in (Decision.CONFLICT_APPLIED, Decision.CONFLICT_STALE)


def _lww(rule: ConflictRule, version: Version) -> Rank:
    return (version.hlc, version.origin, version.deleted)


def _timestamp(rule: ConflictRule, version: Version) -> Rank:
    return (_ordering_value(version), version.hlc, version.origin, version.deleted)


def _region_priority(rule: ConflictRule, version: Version) -> Rank:
    priority = rule.priorities.get(version.origin, 0)
    return (depth(_vector(rule, version)), priority, version.hlc, version.origin, version.deleted)


def _by_vector(rule: ConflictRule, version: Version) -> Rank:
    if rule.effective_fallback is Fallback.REGION_PRIORITY:
        return _region_priority(rule, version)
    _vector(rule, version)
    return _lww(rule, version)


def _unordered(rule: ConflictRule, version: Version) -> Rank:
    raise UnorderedPolicy(f"topic {rule.topic!r} has policy none: its records are applied as they arrive, unranked")


_RANKS: dict[Policy, Callable[[ConflictRule, Version], Rank]] = {
    Policy.LWW: _lww,
    Policy.TIMESTAMP: _timestamp,
    Policy.REGION_PRIORITY: _region_priority,
    Policy.VECTOR: _by_vector,
    Policy.NONE: _unordered,
}

# Fixed-width big-endian layouts of each rank, element for element. Origins are
# NUL-padded: NUL sorts below every region-name character, as a string's end does.
_LAYOUTS = {
    Policy.LWW: struct.Struct(f">Q{ORIGIN_BYTES}s?"),
    Policy.TIMESTAMP: struct.Struct(f">QQ{ORIGIN_BYTES}s?"),
    Policy.REGION_PRIORITY: struct.Struct(f">QHQ{ORIGIN_BYTES}s?"),
}
_U64 = struct.Struct(">Q")
_U16 = struct.Struct(">H")


def _ordering_value(version: Version) -> int:
    if version.deleted:
        return physical_ms(version.hlc)
    if version.field is None:
        raise MissingOrderingField(
            f"a write from {version.origin} has no ordering field; the timestamp policy cannot place it"
        )
    return version.field


def _vector(rule: ConflictRule, version: Version) -> Vector:
    if not version.vector:
        raise MissingOrderingField(
            f"a version from {version.origin} carries no version vector; policy {rule.policy} orders by it"
        )
    return version.vector


def rank(rule: ConflictRule, version: Version) -> Rank:
    """The version's place in the rule's total order: the larger rank wins."""
    return _RANKS[rule.policy](rule, version)


def rank_bytes(rule: ConflictRule, version: Version) -> bytes:
    """`rank` as fixed-width bytes whose bytewise order is the rank's order.

    Lets version state compare ranks as opaque strings (in a Redis script, say)
    without knowing policies. Ranks from different policies are not comparable.
    """
    *head, origin, deleted = rank(rule, version)
    return _layout(rule).pack(*head, _origin_bytes(origin), deleted)


class Head(IntEnum):
    """What comes before the hybrid timestamp in a rank whose stamp is not known yet (`RankTemplate`)."""

    GIVEN = 1  # `head` as it is
    STAMP_MS = 2  # the stamp's milliseconds: a tombstone under the timestamp policy
    DEPTH = 3  # the stamp's vector depth, then `head`: ranks that start with depth


@dataclass(frozen=True, slots=True)
class RankTemplate:
    """A version's rank bytes with the stamp left out, for whoever stamps it (the state's stamp script).

    Every layout is [head] hlc origin deleted; the head may depend on the stamp
    (see `Head`). `fill` is the reference the script follows.
    """

    kind: Head
    head: bytes
    tail: bytes  # origin and deleted flag

    def fill(self, hlc: int, vector: Vector) -> bytes:
        """The rank bytes once the version is stamped `hlc` with `vector`."""
        head = self.head
        if self.kind is Head.STAMP_MS:
            head = _U64.pack(physical_ms(hlc))
        elif self.kind is Head.DEPTH:
            head = _U64.pack(depth(vector)) + head
        return head + _U64.pack(hlc) + self.tail


def rank_template(rule: ConflictRule, origin: str, deleted: bool, field: int | None = None) -> RankTemplate:
    """The template of a version of `origin` to be stamped under `rule`; `field` as in `Version`."""
    tail = rank_tail(origin, deleted)
    layout = _layout(rule)
    if layout is _LAYOUTS[Policy.LWW]:
        return RankTemplate(Head.GIVEN, b"", tail)
    if layout is _LAYOUTS[Policy.TIMESTAMP]:
        if deleted:
            return RankTemplate(Head.STAMP_MS, b"", tail)
        return RankTemplate(Head.GIVEN, _U64.pack(_ordering_value(Version(0, origin, EMPTY, deleted, field))), tail)
    return RankTemplate(Head.DEPTH, _U16.pack(rule.priorities.get(origin, 0)), tail)


@lru_cache(maxsize=4096)
def rank_tail(origin: str, deleted: bool) -> bytes:
    """The last bytes of every rank layout: the origin, NUL-padded, and the deleted flag."""
    return _origin_bytes(origin).ljust(ORIGIN_BYTES, b"\0") + (b"\1" if deleted else b"\0")


def clock_ranked(rule: ConflictRule) -> bool:
    """True when `rule`'s ranks are hlc, origin, deleted alone: `rank_bytes` is then the hlc's 8 bytes + `rank_tail`."""
    return rule.policy is Policy.LWW or (rule.policy is Policy.VECTOR and rule.effective_fallback is Fallback.LWW)


def _origin_bytes(origin: str) -> bytes:
    if not (origin.isascii() and len(origin) <= ORIGIN_BYTES):
        raise InvalidVersion(f"origin {origin!r} is not a region name of at most {ORIGIN_BYTES} ASCII characters")
    return origin.encode("ascii")


def _layout(rule: ConflictRule) -> struct.Struct:
    if rule.policy is Policy.VECTOR:
        return _LAYOUTS[Policy(rule.effective_fallback)]
    if rule.policy is Policy.NONE:
        raise UnorderedPolicy(f"topic {rule.topic!r} has policy none: its records have no rank")
    return _LAYOUTS[rule.policy]


def decide(rule: ConflictRule, stored: Version | None, incoming: Version) -> Decision:
    """What to do with `incoming` when the replica holds `stored` (None: nothing yet)."""
    if stored is None or rule.policy is Policy.NONE:
        return Decision.APPLY
    new, held = rank(rule, incoming), rank(rule, stored)
    if new == held:
        return Decision.DUPLICATE
    wins = new > held
    if rule.policy is Policy.VECTOR and compare(incoming.vector, stored.vector) is Order.CONCURRENT:
        return Decision.CONFLICT_APPLIED if wins else Decision.CONFLICT_STALE
    return Decision.APPLY if wins else Decision.STALE


def resolved_winner(rule: ConflictRule, versions: Iterable[Version]) -> Version | None:
    """The version every replica holds once all of `versions` arrived; None when there are none.

    The maximum rank; a tombstone can win (the key then reads as absent). Under
    policy none, where nothing is resolved, it is the last one, as `decide`
    applied in that order would leave it.
    """
    if rule.policy is Policy.NONE:
        last = deque(versions, maxlen=1)
        return last[0] if last else None
    return max(versions, key=lambda version: rank(rule, version), default=None)
