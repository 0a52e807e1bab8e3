"""Conflict resolution on a link's path: stamp first hops in the source, decide each record in the destination.

For every record of a topic under a conflict rule, per batch:
1. the source region's state stamps records its plain clients wrote (one stamp
   per record, shared by every link out of the region);
2. the destination region's state decides each record against the version it
   holds (one Lua call per batch): apply, write again (duplicate), drop as stale,
   or, under the vector policy, flag a conflict;
3. records that are written get their provenance header with the stamp.

Redis is not in Kafka's transaction: the state may run ahead of the topic when
a write fails, and the redelivered record then comes back as a duplicate and is
written again (docs/conflicts.md).
"""

import logging
from collections import Counter
from dataclasses import dataclass, field

import redis

from amity.headers import encode_fields, encode_stamped, with_provenance
from amity.links import Link
from amity.mirror.router import Headers, Message, ToResolve
from amity.packing import packb
from amity.rebuild import rebuild
from amity.regions import Region
from amity.resolver import Held, Incoming, Outcome, Reason, Resolved, Resolver, Stamped, Stamper, Verdict
from amity.rules import RuleSet
from amity.state import StateLost, StateSettings, rank_stamp

log = logging.getLogger(__name__)

REBUILD_LOCK_S = 600
_VERDICTS = {verdict: str(verdict).encode() for verdict in Verdict}
_ARRAY_OF_4, _TRUE, _FALSE = b"\x94", b"\xc3", b"\xc2"  # msgpack's fixarray of 4, true, false
# Outcomes written with nothing to count or record: nearly every record of a batch.
_WRITTEN_AS_IS = frozenset({Verdict.APPLY, Verdict.DUPLICATE})


def conflicts_topic(topic: str) -> str:
    """Where concurrent versions of `topic`'s keys are recorded, in the destination region."""
    return f"{topic}.conflicts"


class RegionStateLost(StateLost):
    """A region's version state was lost; says which region, so the right one is rebuilt."""

    def __init__(self, region: str, cause: StateLost) -> None:
        Exception.__init__(self, f"region {region}: {cause}")
        self.region = region


class RegionRedisError(redis.RedisError):
    """A Redis call of the resolver failed; says whose Redis, which the client's own error does not."""

    def __init__(self, region: str, cause: redis.RedisError) -> None:
        super().__init__(f"Redis of {region}: {cause}")


@dataclass(slots=True)
class Decided:
    """A resolved batch: what to write, what to record as a conflict, what to dead-letter, what to count."""

    forward: list[tuple[Message, Headers]] = field(default_factory=list)
    conflicts: list[tuple[Message, Headers, Outcome]] = field(default_factory=list)
    dead: list[tuple[Message, str, str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)  # (topic, what) -> records
    # Aligned with `forward`: the destination's (state hash, rank bytes) of each record decided in Redis, None
    # for one that passed unresolved (keyless, say).
    versions: list[tuple[bytes, bytes] | None] = field(default_factory=list)


class Resolution:
    """The stamper of a link's source and the resolver of its destination."""

    def __init__(self, link: Link, source: Region, destination: Region, rules: RuleSet,
                 settings: StateSettings, timeout_s: float) -> None:
        self.link = link
        self.settings = settings
        self.regions = {link.source: source, link.destination: destination}
        # A Redis that stops answering raises a TimeoutError after timeout_s (the link retries), never hangs the link.
        self.clients = {name: redis.Redis.from_url(region.redis, socket_timeout=timeout_s,
                                                   socket_connect_timeout=timeout_s)
                        for name, region in self.regions.items()}
        self.stamper = Stamper(self.clients[link.source], rules, link.source, settings=settings)
        self.resolver = Resolver(self.clients[link.destination], rules, link.destination, settings=settings)

    def set_rules(self, rules: RuleSet) -> None:
        self.stamper.rules = rules
        self.resolver.rules = rules

    def decide(self, batch: list[ToResolve]) -> Decided:
        incoming = [entry.incoming for entry in batch]
        resolved = self._resolve(incoming, self._stamp(incoming))
        decided = Decided()
        forward, versions = decided.forward.append, decided.versions.append
        for entry, record, outcome, hlc, vector, key, rank in zip(batch, incoming, resolved.outcomes, resolved.hlcs,
                                                                   resolved.vectors, resolved.keys, resolved.ranks):
            if outcome.verdict in _WRITTEN_AS_IS:
                headers = _headers(entry, record, hlc, vector)
            else:
                headers = _settle(decided, entry, record, outcome, hlc, vector)
                if headers is None:
                    continue
            forward((entry.msg, headers))
            versions(None if key is None else (key, rank))
        return decided

    def _stamp(self, incoming: list[Incoming]) -> Stamped:
        try:
            return self.stamper.stamp_batch(incoming)
        except StateLost as exc:
            raise RegionStateLost(self.link.source, exc) from None
        except redis.RedisError as exc:
            raise RegionRedisError(self.link.source, exc) from exc

    def _resolve(self, incoming: list[Incoming], stamped: Stamped) -> Resolved:
        try:
            return self.resolver.decide(incoming, stamped)
        except StateLost as exc:
            raise RegionStateLost(self.link.destination, exc) from None
        except redis.RedisError as exc:
            raise RegionRedisError(self.link.destination, exc) from exc

    def rebuild(self, region: str, topics: list[str], rules: RuleSet) -> bool:
        """Rebuild a lost region state unless another worker is at it; True once this process can resolve again."""
        client = self.clients[region]
        lock = f"{self.settings.namespace}:rebuild-lock"
        if client.set(lock, self.link.name, nx=True, ex=REBUILD_LOCK_S):
            try:
                report = rebuild(self.regions[region], topics, rules, client=client, settings=self.settings,
                                 progress=lambda message: log.info("link %s: %s", self.link.name, message))
                log.warning("link %s: rebuilt the version state of %s from %d records", self.link.name, region,
                            report.records)
            finally:
                client.delete(lock)
        try:
            (self.stamper if region == self.link.source else self.resolver).resume()
        except StateLost:
            return False
        return True


def _headers(entry: ToResolve, record: Incoming, hlc: int | None, vector: bytes | None) -> Headers:
    """The record's headers with its provenance: the stamp's packed vector as it is, else the one it arrived with."""
    if vector is None:
        header = encode_fields(record.origin, entry.origin_topic, entry.origin_partition, entry.origin_offset,
                               record.timestamp_ms, entry.path, hlc, record.vector)
    else:
        header = encode_stamped(record.origin, entry.origin_topic, entry.origin_partition, entry.origin_offset,
                                record.timestamp_ms, entry.path, hlc, vector)
    return with_provenance(record.headers, header)


def _settle(decided: Decided, entry: ToResolve, record: Incoming, outcome: Outcome, hlc: int | None,
            vector: bytes | None) -> Headers | None:
    """Count, dead-letter or record as a conflict a record `decide` does not simply write; its headers when it is
    written, None when it is not."""
    msg, counts = entry.msg, decided.counts
    topic = msg.topic()
    if outcome.verdict is Verdict.STALE:  # a dropped record: no header to build
        counts[(topic, "stale")] += 1
        return None
    if outcome.verdict is Verdict.DEAD:
        decided.dead.append((msg, str(outcome.reason), outcome.detail))
        return None
    headers = _headers(entry, record, hlc, vector)
    if outcome.reason is Reason.KEYLESS:
        counts[(topic, "keyless")] += 1
    elif outcome.is_conflict:
        decided.conflicts.append((msg, headers, outcome))
        counts[(topic, "detected")] += 1
        counts[(topic, "resolved")] += 1
        if outcome.verdict is Verdict.CONFLICT_STALE:
            counts[(topic, "stale")] += 1
    return headers if outcome.writes else None


def conflict_headers(headers: Headers, outcome: Outcome) -> Headers:
    """The conflicting record's headers plus what it was decided against: the held version and the verdict."""
    return [*headers, ("amity-conflict-verdict", _VERDICTS[outcome.verdict]),
            ("amity-conflict-held", described(outcome.conflict))]


def described(held: Held) -> bytes:
    """The `amity-conflict-held` header: msgpack [hlc, origin, vector (a map region -> counter), deleted].

    The vector goes in as the state packed it, a msgpack map already, instead of being decoded and packed again.
    """
    hlc, origin, deleted = rank_stamp(held.rank)
    return b"".join((_ARRAY_OF_4, packb(hlc), packb(origin), held.vector, _TRUE if deleted else _FALSE))
