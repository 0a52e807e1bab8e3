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

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from enum import StrEnum
from typing import NamedTuple

import redis

from amity import state as codes
from amity.clock import LOGICAL_BITS, ClockSkewError, TimestampRangeError, pack, physical_ms, wall_clock_ms
from amity.errors import AmityError
from amity.headers import Provenance
from amity.ordering import Headers, MissingOrderingField
from amity.policies import InvalidVersion, Version, clock_ranked, rank_bytes, rank_tail, rank_template
from amity.rules import ConflictRule, FirstHop, Policy, RuleSet
from amity.state import (
    CONCURRENCY, MEMO_BUCKET, Claims, FirstHops, Hold, Passed, StampRequests, StateSettings, VersionState,
    held_version, may_expire, pack_vector, reads_of, unpack_vector,
)
from amity.vectors import EMPTY, Vector

_HLC = struct.Struct(">Q")
_EMPTY = pack_vector(EMPTY)
_NO_VECTOR = (None, _EMPTY)
# Builds a named tuple from its fields without the generated __new__, whose Python frame costs three times the
# tuple: for the values the mirror builds per record from fields it has checked already.
_new = tuple.__new__


class Incoming(NamedTuple):
    """One record to stamp or resolve: what the router read from the record and its provenance header.

    A named tuple, not a frozen dataclass: the mirror builds one per record, and a tuple is several times
    cheaper to build.

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
    def of(cls, message, provenance: Provenance, topic: str | None = None,
           headers: Headers | None = None) -> "Incoming":
        """A mirrored record (anything with key(), value(), headers(), topic()) and its decoded provenance.

        `headers`: the record's headers when the caller has read them already (each read builds a new list).
        """
        p = provenance
        return _new(cls, (topic or message.topic(), message.key(), message.value(), headers or message.headers(),
                          p.origin, p.timestamp_ms, p.hlc, p.vector, p.partition, p.offset))

    def stamped(self, hlc: int, vector: Vector) -> "Incoming":
        """This record with its first-hop stamp."""
        return Incoming(self.topic, self.key, self.value, self.headers, self.origin, self.timestamp_ms, hlc, vector,
                        self.partition, self.offset)

    @classmethod
    def first_hop(cls, message, origin: str, topic: str | None = None) -> "Incoming":
        """A record written in `origin` by a plain Kafka client, read there: not stamped yet."""
        return _new(cls, (topic or message.topic(), message.key(), message.value(), message.headers(), origin,
                          max(message.timestamp()[1], 0), None, None, message.partition(), message.offset()))


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
_CONFLICTED = frozenset({Verdict.CONFLICT_APPLIED, Verdict.CONFLICT_STALE})


class Held(NamedTuple):
    """The version a conflicting record was decided against, as the state holds it.

    Decoded only when asked: the conflicts topic takes the packed vector as it is. There is one per conflict,
    and in the benchmark's active-active `vector` run over half of the arriving records are conflicts.
    """

    rule: ConflictRule
    rank: bytes
    vector: bytes  # packed, as `pack_vector` packs it

    def version(self) -> Version:
        return held_version(self.rule, self.rank, unpack_vector(self.vector))


class Outcome(NamedTuple):
    """What to do with one record. Common outcomes are shared instances: compare `verdict`, not identity.

    A named tuple, not a frozen dataclass: under the vector policy a conflict builds one per record (up to a third
    of the records in the benchmark's `vector` run), and a frozen dataclass costs five times as much to build.
    """

    verdict: Verdict
    reason: Reason | None = None
    detail: str = ""
    conflict: Held | None = None  # conflicts: the version the record was decided against

    @property
    def held(self) -> Version | None:
        """The version a conflict was decided against, decoded."""
        return None if self.conflict is None else self.conflict.version()

    @property
    def writes(self) -> bool:
        """True when the record goes to the destination topic."""
        return self.verdict in _WRITES

    @property
    def is_conflict(self) -> bool:
        return self.verdict in _CONFLICTED


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


# A source record another link refused at its first hop; every link refuses it alike, whatever its clock says now.
_REFUSED_BEFORE = Outcome(Verdict.DEAD, Reason.CLOCK_SKEW, "refused at its first hop by another link out of the "
                                                           "region: its timestamp was too far ahead of the clock then")

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

    def refused_from(self, rule: ConflictRule) -> int:
        """The lowest hybrid timestamp `check` refuses in this batch: one comparison per record."""
        return (self.now + rule.max_skew_ms + 1) << LOGICAL_BITS

    def check(self, rule: ConflictRule, hlc: int) -> None:
        """Raise ClockSkewError when `hlc` is further ahead of the batch's wall-clock time than the rule allows."""
        remote_ms = physical_ms(hlc)
        if remote_ms > self.now + rule.max_skew_ms:
            raise ClockSkewError(remote_ms, self.now, rule.max_skew_ms)


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


@dataclass(slots=True)
class Stamped:
    """A batch after its first-hop stamps, column by column: index i is the batch's record i."""

    hlcs: list[int | None]  # the record's hybrid timestamp: its new stamp, else the one it arrived with
    vectors: list[bytes | None]  # the new stamp's vector, packed (amity.state.pack_vector); None: not stamped here
    dead: list[Outcome | None]  # DEAD where the record could not be stamped
    keys: list[bytes | None]  # the state hash of a record stamped here (state_key); None: not stamped here
    # The settings of the state that named `keys`: a state with equal settings names every key alike, so a
    # resolver of such a state takes them as they are (the mirror's source and destination states, usually).
    settings: StateSettings


@dataclass(slots=True)
class Resolved:
    """A batch's outcomes and, for each record decided in Redis, the version it claimed: columns by record."""

    outcomes: list[Outcome]
    hlcs: list[int | None]  # the record's hybrid timestamp (stamped or as it arrived)
    vectors: list[bytes | None]  # its vector packed, for its header; None where the record carries none
    keys: list[bytes | None]  # its state hash; None: not decided in Redis (PASS, DEAD)
    ranks: list[bytes | None]  # its rank bytes; None: not decided in Redis


class _Topic:
    """What deciding a topic's records needs from its rule, worked out once per batch."""

    __slots__ = ("rule", "passes", "clock_ranked", "reads", "tombstone_ttl_ms", "refused_from", "holds",
                 "from_timestamp")

    def __init__(self, rule: ConflictRule | None, state: VersionState, guard: SkewGuard) -> None:
        self.rule = rule
        self.passes = passing(rule, b"")  # the PASS outcome of every record, None when keyed records are resolved
        if self.passes is None:
            self.clock_ranked = clock_ranked(rule)
            self.reads = reads_of(rule)
            self.tombstone_ttl_ms = state.settings.tombstone_ttl_ms if may_expire(rule) else 0
            self.refused_from = guard.refused_from(rule)
            # A stamper's Hold, by deleted flag, where every record with that flag shares it (Stamper._hold).
            self.holds: list[Hold | None] = [None, None]
            self.from_timestamp = rule.first_hop is FirstHop.TIMESTAMP


class _Topics(dict[str, _Topic]):
    """`_Topic` by topic name, for one batch: the same few topics recur per record, found by a plain dict lookup."""

    __slots__ = ("rules", "state", "guard")

    def __init__(self, rules: RuleSet, state: VersionState, guard: SkewGuard) -> None:
        super().__init__()
        self.rules, self.state, self.guard = rules, state, guard

    def __missing__(self, topic: str) -> _Topic:
        found = self[topic] = _Topic(self.rules.rule_for(topic), self.state, self.guard)
        return found


class _OnRegionState:
    """What the resolver and the stamper share: one region's version state, the rules in force, the skew guard."""

    def __init__(self, client: redis.Redis, rules: RuleSet, region: str, *,
                 now_ms: Callable[[], int] = wall_clock_ms, settings: StateSettings | None = None,
                 expected_epoch: str | None = None) -> None:
        self.region = region
        self.rules = rules
        self.state = VersionState(client, settings, expected_epoch)
        self.guard = SkewGuard(now_ms)

    def resume(self) -> str:
        """Accept the state's current epoch after a rebuild; StateLost while the rebuild has not finished."""
        return self.state.adopt()


class Resolver(_OnRegionState):
    """Decides arriving records against one region's version state."""

    def resolve(self, batch: Sequence[Incoming]) -> list[Outcome]:
        """One outcome per record, in batch order; raises StateLost (and changes nothing) on a lost state."""
        return self.decide(batch).outcomes

    def decide(self, batch: Sequence[Incoming], stamped: Stamped | None = None) -> Resolved:
        """`resolve` with what each record claimed; `stamped`: the batch's first-hop stamps (DEAD stays dead)."""
        n = len(batch)
        hlcs = stamped.hlcs if stamped else [record.hlc for record in batch]
        fresh = stamped.vectors if stamped else [None] * n
        known = stamped.keys if stamped and stamped.settings == self.state.settings else [None] * n
        outcomes: list[Outcome | None] = list(stamped.dead) if stamped else [None] * n
        vectors: list[bytes | None] = [None] * n
        keys: list[bytes | None] = [None] * n
        ranks: list[bytes | None] = [None] * n
        claims, where = Claims(), []
        add, state_key, pack_hlc = claims.add, self.state.state_key, _HLC.pack
        self.guard.start_batch()
        topics = _Topics(self.rules, self.state, self.guard)
        for index, record in enumerate(batch):
            if outcomes[index] is not None:
                continue
            topic = topics[record.topic]
            if topic.passes is not None or record.key is None:
                outcomes[index] = topic.passes or PASS_KEYLESS
                continue
            hlc = hlcs[index]
            packed = fresh[index]
            if packed is None and record.vector is not None:
                packed = pack_vector(record.vector)
            vectors[index] = packed
            deleted = record.value is None
            try:
                if hlc is None or hlc >= topic.refused_from:
                    self._refuse(topic.rule, record, hlc)
                hlc8 = pack_hlc(hlc)
                if topic.clock_ranked and not (topic.reads == CONCURRENCY and packed in _NO_VECTOR):
                    rank = hlc8 + rank_tail(record.origin, deleted)
                else:
                    vector = record.vector if fresh[index] is None else unpack_vector(packed)
                    rank = rank_bytes(topic.rule, replace(version_of(topic.rule, record, hlc), vector=vector or EMPTY))
            except _DEAD_ERRORS as exc:
                outcomes[index] = _dead_from(exc)
                continue
            key = keys[index] = known[index] or state_key(record.topic, record.key)
            ranks[index] = rank
            add(key, rank, hlc8, packed or _EMPTY, topic.tombstone_ttl_ms if deleted else 0, topic.reads)
            where.append(index)
        applied = self.state.apply(claims)
        held = applied.held
        for position, code in enumerate(applied.codes):
            index = where[position]
            outcome = _SIMPLE.get(code)
            if outcome is None:
                outcome = self._outcome(code, topics[batch[index].topic].rule, held.get(position))
            outcomes[index] = outcome
        return Resolved(outcomes, hlcs, vectors, keys, ranks)

    def _refuse(self, rule: ConflictRule, record: Incoming, hlc: int | None) -> None:
        if hlc is None:
            raise Unstamped(f"a record from {record.origin} in {record.topic} has no hybrid timestamp; "
                            f"topics under policy {rule.policy} need every record stamped at its first hop")
        self.guard.check(rule, hlc)

    def _outcome(self, code: str, rule: ConflictRule, held: tuple[bytes, bytes] | None) -> Outcome:
        if code in _CONFLICTS:
            return _new(Outcome, (_CONFLICTS[code], None, "", _new(Held, (rule, *held))))
        return dead(Reason.POLICY_CHANGED,
                    f"the key's state in {self.region} was written under another policy or layout than "
                    f"{rule.policy}; a policy change needs a barrier (docs/conflicts.md)")


class Stamper(_OnRegionState):
    """Stamps records written in its region by plain Kafka clients, at their first hop out of it.

    A source record gets one stamp, whichever link reads it first: the stamp is
    remembered in the region's state under (topic, partition, offset) for
    `stamp_ttl_ms`, and every other link gets the same one. The first stamp
    also becomes the region's held version (the record is already in the
    topic), in the same script call.

    Under a rule whose first hops are stamped from the timestamp, the stamp is
    the record's own, (timestamp ms, 0) and {region: 1}, the same wherever it is
    computed, and only refusals are remembered (`VersionState.pass_first_hops`).
    """

    @cached_property
    def own_vector(self) -> bytes:
        """The vector of every stamp taken from a timestamp, packed: the region's first write."""
        return pack_vector(((self.region, 1),))

    def stamp(self, batch: Sequence[Incoming]) -> list[Incoming | Outcome]:
        """Each record stamped, unchanged (nothing to stamp), or a DEAD outcome; one Redis call at most."""
        stamped = self.stamp_batch(batch)
        return [stamped.dead[i] or (record if stamped.vectors[i] is None
                                    else record.stamped(stamped.hlcs[i], unpack_vector(stamped.vectors[i])))
                for i, record in enumerate(batch)]

    def stamp_batch(self, batch: Sequence[Incoming]) -> Stamped:
        """`stamp`, column by column, with the stamps' vectors packed as the script gives them."""
        n = len(batch)
        hlcs = [record.hlc for record in batch]
        vectors: list[bytes | None] = [None] * n
        dead_ones: list[Outcome | None] = [None] * n
        keys: list[bytes | None] = [None] * n
        requests = StampRequests()
        where: list[int] = []
        timed: list[int] = []  # records of topics whose first hops are stamped from the timestamp
        request, region, state_key = requests.add, self.region, self.state.state_key
        self.guard.start_batch()
        topics = _Topics(self.rules, self.state, self.guard)
        for index, record in enumerate(batch):
            if record.hlc is not None or record.origin != region or record.key is None:
                continue
            topic = topics[record.topic]
            if topic.passes is not None:
                continue
            if topic.from_timestamp:
                timed.append(index)
                continue
            source = (record.topic, record.partition, record.offset)
            try:
                floor = pack(record.timestamp_ms, 0)
                if floor >= topic.refused_from:
                    self.guard.check(topic.rule, floor)
                # unorderable writes are refused before stamping
                hold = topic.holds[record.value is None] or self._hold(topic, record)
            except _DEAD_ERRORS as exc:
                dead_ones[index] = _dead_from(exc)
                if isinstance(exc, ClockSkewError):  # a later look at the clock could take it: memoise the refusal
                    requests.refuse(state_key(record.topic, record.key), source)
                    where.append(index)
                continue
            request(state_key(record.topic, record.key), floor, source, hold)
            where.append(index)
        stamps = self.state.stamp_batch(requests, region)
        from_bytes = int.from_bytes
        for index, hlc, vector, key in zip(where, stamps.hlcs, stamps.vectors, requests.fields[::8]):
            if not hlc:
                dead_ones[index] = dead_ones[index] or _REFUSED_BEFORE
                continue
            dead_ones[index] = None  # asked to refuse, but another link stamped it first: as that link did
            hlcs[index] = from_bytes(hlc, "big")
            vectors[index] = vector
            keys[index] = key
        if timed:
            self._from_timestamps(batch, timed, topics, hlcs, vectors, dead_ones)
        return Stamped(hlcs, vectors, dead_ones, keys, self.state.settings)

    def _from_timestamps(self, batch: Sequence[Incoming], timed: list[int], topics: "_Topics",
                         hlcs: list[int | None], vectors: list[bytes | None], dead_ones: list[Outcome | None]) -> None:
        """Stamp records `timed` from their timestamps alone, pass them in the first-hops script, and take what a
        link that passed one before decided (a link ahead of every other has nothing to take)."""
        hops, own = FirstHops(), self.own_vector
        add = hops.add
        for index in timed:
            record = batch[index]
            topic = topics[record.topic]
            hlc = record.timestamp_ms << LOGICAL_BITS
            if 0 <= hlc < topic.refused_from:  # the clock check and pack's range check at once: nearly every record
                hlcs[index], vectors[index] = hlc, own
                add(record.topic, record.partition, record.offset)
                continue
            try:
                self.guard.check(topic.rule, pack(record.timestamp_ms, 0))
            except _DEAD_ERRORS as exc:
                dead_ones[index] = _dead_from(exc)
                if isinstance(exc, ClockSkewError):  # a later look at the clock could take it: memoise the refusal
                    add(record.topic, record.partition, record.offset, True)
        passed = self.state.pass_first_hops(hops)
        if any(before.mark >= hops.hashes[bucket][0] for bucket, before in passed.items()):
            self._follow(batch, timed, passed, hlcs, vectors, dead_ones)

    def _follow(self, batch: Sequence[Incoming], timed: list[int], passed: dict[tuple[str, int, int], Passed],
                hlcs: list[int | None], vectors: list[bytes | None], dead_ones: list[Outcome | None]) -> None:
        """Decide each record stamped from its timestamp as the link that passed it first did, if one did."""
        for index in timed:
            record, dead = batch[index], dead_ones[index]
            if dead is not None and dead.reason is not Reason.CLOCK_SKEW:
                continue  # a timestamp no stamp can carry: every link refuses it alike, nothing to follow
            before = passed[(record.topic, record.partition, record.offset // MEMO_BUCKET)]
            if record.offset > before.mark:
                continue  # this link is the first: its own decision stands, and is now memoised if a refusal
            memo = before.decided.get(record.offset)
            if memo == b"":
                dead_ones[index] = dead_ones[index] or _REFUSED_BEFORE
                continue
            dead_ones[index] = None
            if memo is None:  # passed and not refused: the formula's stamp, whatever this link's clock says
                hlcs[index], vectors[index] = pack(record.timestamp_ms, 0), self.own_vector
            else:  # stamped from the state (a rule change on its way to this link): that stamp
                hlcs[index], vectors[index] = _HLC.unpack_from(memo)[0], pack_vector(unpack_vector(memo[8:]))

    def _hold(self, topic: _Topic, record: Incoming) -> Hold:
        """How the record's stamp becomes the held version; kept in `topic.holds` for the batch's other records
        with its tombstone flag, unless it carries an ordering field of its own."""
        deleted = record.value is None
        rule = topic.rule
        if rule.policy is Policy.TIMESTAMP and not deleted:
            field = rule.ordering_field.read(record.timestamp_ms, record.headers, record.value)
            return Hold(rank_template(rule, self.region, False, field), 0)
        hold = topic.holds[deleted] = Hold(rank_template(rule, self.region, deleted),
                                           topic.tombstone_ttl_ms if deleted else 0)
        return hold
