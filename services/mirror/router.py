"""The per-record decision of a link: forward with provenance, drop as a loop, or dead-letter.

Pure: no I/O, so every rule is unit-tested with stub messages. This is the hot
path; it builds one header list and one small tuple per forwarded record.

Records of topics under a conflict rule are not encoded here: their header
needs the stamp the resolver gives them, so they leave in `Routed.resolve`
with everything the header will need (amity.mirror.resolution).
"""

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from amity.headers import (
    MAX_HEADER_BYTES, PROVENANCE_HEADER, MalformedProvenance, Provenance, Shapes, check_consistent, decode,
    encode_fields, encode_first_hop, find_provenance, with_provenance, written_into,
)
from amity.links import Link
from amity.resolver import Incoming
from amity.rules import Policy, RuleSet
from amity.topology import Topology, Verdict

Headers = list[tuple[str, bytes]]
# One ToResolve per resolved record, built as amity.resolver builds Incoming (see its _new).
_new = tuple.__new__

# Record batch and per-record framing that Kafka adds around key, value and headers.
RECORD_OVERHEAD = 128
HEADER_OVERHEAD = 8
# A stamp (hybrid timestamp and version vector) grows a header by at most this much over the unstamped one.
STAMP_ALLOWANCE = 512
_STAMPED_HEADER_BOUND = b"x" * STAMP_ALLOWANCE  # the size a resolved record's header is checked at


class Message(Protocol):
    """What the router reads from a consumed record (confluent_kafka.Message has all of it)."""

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...
    def timestamp(self) -> tuple[int, int]: ...


class ToResolve(NamedTuple):
    """A record on its way through the resolver, and the provenance its header will carry once stamped."""

    msg: Message
    incoming: Incoming
    origin_topic: str
    origin_partition: int
    origin_offset: int
    path: tuple[str, ...]  # with the destination already appended


@dataclass(slots=True)
class Routed:
    """A batch split by outcome, in consumed order within each list."""

    forward: list[tuple[Message, Headers]] = field(default_factory=list)
    resolve: list[ToResolve] = field(default_factory=list)
    dead: list[tuple[Message, str, str]] = field(default_factory=list)
    conflicts: list = field(default_factory=list)  # filled by the resolver: (msg, headers, outcome)
    dropped: Counter = field(default_factory=Counter)  # (topic, reason) -> records


class Router:
    """Applies provenance, loop and size rules for one link.

    Routing trees are computed per topic over the links that replicate that
    topic: a link that excludes a topic must not be a tree edge for it, or the
    regions below it would never receive the topic's records.
    """

    def __init__(self, link: Link, links: list[Link], regions: list[str], max_hops: int,
                 rules: RuleSet | None = None) -> None:
        self.link = link
        self.links = links
        self.regions = regions
        self.max_hops = max_hops
        self.source = link.source
        self.destination = link.destination
        self._topologies: dict[str, Topology] = {}
        self._local_verdicts: dict[str, Verdict] = {}  # by topic: the verdict every record produced in the source gets
        self._dropping: defaultdict[str, Shapes] = defaultdict(Shapes)  # by topic: shapes whose records it drops
        self.rules = rules or RuleSet()
        self._resolved: dict[str, bool] = {}
        self._first_hop_path = (self.source, self.destination)  # the path of every first hop this link makes

    def route(self, messages: list[Message], max_bytes: dict[str, int], compacted: frozenset[str] = frozenset(),
              windows: dict[str, tuple[int, int]] | None = None) -> Routed:
        """Decide every record of a batch; `max_bytes` is the largest record each destination topic takes,
        `compacted` the topics whose destination is compacted (it refuses a record without a key), `windows` the
        topics whose records' timestamps are checked, with how far before and after now the destination takes."""
        routed = Routed()
        bounds = _bounds(windows) if windows else None
        source, destination, max_hops = self.source, self.destination, self.max_hops
        local_verdicts, dropping = self._local_verdicts, self._dropping
        dropped = routed.dropped
        for msg in messages:
            headers = msg.headers()
            topic = msg.topic()
            try:
                raw = find_provenance(headers) if headers else None
                if raw is not None:
                    shapes = dropping.get(topic)
                    reason = shapes.find(raw) if shapes is not None else None
                    if reason is not None:  # a header of a shape this link drops: nothing else to read from it
                        dropped[(topic, reason)] += 1
                        continue
                    provenance = self._provenance(raw, topic)
                else:
                    provenance = None
            except MalformedProvenance as exc:
                routed.dead.append((msg, exc.reason, exc.detail))
                continue
            if provenance is None:
                verdict = local_verdicts.get(topic) or self._local_verdict(topic)
            else:
                verdict = self._topology(topic).route(provenance.origin, provenance.path, source, destination,
                                                      max_hops)
            if verdict is not Verdict.FORWARD:
                if verdict is Verdict.UNKNOWN_ORIGIN:
                    routed.dead.append((msg, str(verdict), f"origin {provenance.origin!r} is not a region of the links"))
                else:
                    dropped[(topic, str(verdict))] += 1
                    if provenance is not None:
                        dropping[topic].add(provenance, str(verdict))
                continue
            if topic in compacted and msg.key() is None:
                routed.dead.append((msg, "keyless-compacted", f"{self.destination} compacts {topic}'s copy, and "
                                                              "a compacted topic refuses records without a key"))
                continue
            if bounds and topic in bounds and not _within(msg.timestamp()[1], bounds[topic]):
                routed.dead.append((msg, "timestamp-refused", f"{self.destination} takes {topic}'s records only "
                                                              f"with a timestamp in {bounds[topic]} (ms) now"))
                continue
            self._place(routed, msg, topic, headers, provenance, max_bytes.get(topic))
        return routed

    def _place(self, routed: Routed, msg: Message, topic: str, headers: Headers | None,
               provenance: Provenance | None, limit: int | None) -> None:
        """A forwarded record: too large, encoded now, or handed to the resolver.

        A resolved record's header is built once stamped; its size is checked here with the largest header a
        stamp can give (the headers list for that check is only built when the cheap bound does not clear it).
        """
        if self.is_resolved(topic):
            if limit is not None and _may_exceed(msg, headers, limit):
                size = record_size(msg, with_provenance(headers, _STAMPED_HEADER_BOUND))
                if size > limit:
                    routed.dead.append((msg, "too-large", f"record of {size} bytes, destination takes {limit}"))
                    return
            routed.resolve.append(self._to_resolve(msg, topic, headers, provenance))
            return
        if provenance is None:
            header = encode_first_hop(self.source, topic, msg.partition(), msg.offset(), max(msg.timestamp()[1], 0),
                                      self.destination)
        else:
            p = provenance
            partition, offset, path = self._crossing(msg, p)
            header = encode_fields(p.origin, p.topic, partition, offset, p.timestamp_ms, path, p.hlc, p.vector)
        out = with_provenance(headers, header)
        if limit is not None and _may_exceed(msg, out, limit) and record_size(msg, out) > limit:
            routed.dead.append((msg, "too-large", f"record of {record_size(msg, out)} bytes, destination takes {limit}"))
        else:
            routed.forward.append((msg, out))

    def _to_resolve(self, msg: Message, topic: str, headers: Headers | None,
                    provenance: Provenance | None) -> ToResolve:
        """Each message accessor is called once: the first hop's coordinates are read back from its Incoming."""
        if provenance is None:
            incoming = Incoming.first_hop(msg, self.source, topic)
            return _new(ToResolve, (msg, incoming, topic, incoming.partition, incoming.offset, self._first_hop_path))
        incoming = Incoming.of(msg, provenance, topic, headers)
        partition, offset, path = self._crossing(msg, provenance)
        return _new(ToResolve, (msg, incoming, provenance.topic, partition, offset, path))

    def _crossing(self, msg: Message, provenance: Provenance) -> tuple[int, int, tuple[str, ...]]:
        """The origin partition and offset and the path a mirrored record's header carries into the destination.

        A record stamped by amity.Producer (a path of its own region alone) carries placeholders, since the
        producer cannot know its offset: at its first hop the broker's coordinates replace them, resolved or
        not, for failover translates offsets by them.
        """
        if len(provenance.path) == 1:
            return msg.partition(), msg.offset(), self._first_hop_path
        return provenance.partition, provenance.offset, (*provenance.path, self.destination)

    def relink(self, links: list[Link], regions: list[str]) -> None:
        """Route over a new link graph from the next batch on."""
        if links != self.links or regions != self.regions:
            self.links, self.regions, self._topologies, self._local_verdicts = links, regions, {}, {}
            self._dropping = defaultdict(Shapes)

    def set_rules(self, rules: RuleSet) -> None:
        """Conflict rules changed: topics may enter or leave the resolver from the next batch on."""
        self.rules, self._resolved = rules, {}

    def is_resolved(self, topic: str) -> bool:
        resolved = self._resolved.get(topic)
        if resolved is None:
            rule = self.rules.rule_for(topic)
            resolved = self._resolved[topic] = rule is not None and rule.policy is not Policy.NONE
        return resolved

    def _provenance(self, raw: bytes, topic: str) -> Provenance | None:
        """The record's provenance header, decoded and checked against the region it was read from; None for a
        header that came with a record an application copied into `topic` (the record is then a local write)."""
        provenance = decode(raw)
        if not written_into(provenance.topic, topic):
            return None
        check_consistent(provenance, self.source)
        return provenance

    def _local_verdict(self, topic: str) -> Verdict:
        """Whether this link forwards records produced in its source: worked out once per topic and link graph."""
        verdict = self._local_verdicts[topic] = self._topology(topic).route(
            self.source, (self.source,), self.source, self.destination, self.max_hops)
        return verdict

    def _topology(self, topic: str) -> Topology:
        topology = self._topologies.get(topic)
        if topology is None:
            edges = [(link.source, link.destination) for link in self.links if link.selects(topic)]
            topology = self._topologies[topic] = Topology(self.regions, edges)
        return topology


def _bounds(windows: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """The timestamps each topic's destination takes now: from `before` ms ago to `after` ms ahead."""
    now = int(time.time() * 1000)
    return {topic: (now - before, now + after) for topic, (before, after) in windows.items()}


def _within(timestamp: int, bounds: tuple[int, int]) -> bool:
    return timestamp < 0 or bounds[0] <= timestamp <= bounds[1]  # no timestamp: the broker gives it its own


def record_size(msg: Message, headers: Headers) -> int:
    """Bytes the record takes on the wire, close enough to compare against max.message.bytes."""
    key, value = msg.key(), msg.value()
    size = RECORD_OVERHEAD + (len(key) if key else 0) + (len(value) if value else 0)
    for name, data in headers:
        size += HEADER_OVERHEAD + len(name) + (len(data) if data else 0)
    return size


def _may_exceed(msg: Message, headers: Headers | None, limit: int) -> bool:
    """A cheap bound first: most records are far below the limit and need no exact size.

    Any headers but a single provenance header (the one each forwarded record carries, at most
    MAX_HEADER_BYTES) call for the exact size.
    """
    value, key = msg.value(), msg.key()
    rough = (len(value) if value else 0) + (len(key) if key else 0) + RECORD_OVERHEAD
    if headers and (len(headers) > 1 or headers[0][0] != PROVENANCE_HEADER):
        return True
    return rough + MAX_HEADER_BYTES + HEADER_OVERHEAD > limit
