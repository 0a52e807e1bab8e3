"""A region's topic as it is stored: every record up to the current end, and the version each one claims.

Shared by the resolved view and the state rebuild, so both read versions the
same way. Records carry their version in the provenance header, except those
written by plain Kafka clients into this region: they have no header here (the
stamp given at their first hop travels only with the mirrored copies). Their
version is that stamp when the caller found it in the region's state (the
first-hop memo, kept `stamp_ttl_ms`); without it they count as writes of this
region stamped from their timestamp: hlc = (timestamp ms, counter 0), vector
{region: 1}.
"""

import time
import uuid
from collections.abc import Iterable, Iterator
from itertools import islice

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from amity.clock import pack
from amity.errors import AmityError
from amity.headers import Provenance, decode, find_provenance, written_into
from amity.policies import Version
from amity.regions import READER_CONFIG
from amity.rules import ConflictRule, Policy
from amity.state import REFUSED, Refused, Stamp, VersionState
from amity.watermarks import end_offset

CHUNK = 1000


class TopicReadError(AmityError):
    """A topic could not be read to its end."""


class RefusedAtFirstHop(AmityError):
    """A plain client's record that its first hop out of the region refused (its clock too far ahead): no other
    region has it, so it does not count in this one either."""


def read_to_end(kafka_config: dict[str, str], topic: str, timeout_s: float = 120.0) -> Iterator[Message]:
    """Every committed record of `topic`, partition by partition interleaved, up to each partition's end now."""
    consumer = Consumer({**kafka_config, "group.id": f"amity-reader-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest", "enable.partition.eof": False, **READER_CONFIG})
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise TopicReadError(f"topic {topic!r} cannot be read: {metadata.error if metadata else 'not found'}")
        partitions = [TopicPartition(topic, p, 0) for p in sorted(metadata.partitions)]
        ends = {tp.partition: end_offset(consumer, tp, timeout_s=30) for tp in partitions}
        consumer.assign(partitions)
        yield from _drain(consumer, ends, timeout_s)
    finally:
        consumer.close()


def _drain(consumer: Consumer, ends: dict[int, int], timeout_s: float) -> Iterator[Message]:
    deadline = time.monotonic() + timeout_s
    pending = {partition for partition, end in ends.items() if end > 0}
    while pending:
        if time.monotonic() > deadline:
            raise TopicReadError(f"partitions {sorted(pending)} not read to their end within {timeout_s}s")
        for msg in consumer.consume(1000, timeout=0.5):
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaException(error)
                continue
            if msg.offset() < ends[msg.partition()]:
                yield msg
        # Positions pass transaction markers too, which no record reports.
        for tp in consumer.position(consumer.assignment()):
            if tp.offset >= ends[tp.partition]:
                pending.discard(tp.partition)


def own_provenance(msg: Message) -> Provenance | None:
    """The record's provenance header, decoded; None without one, or for one that names another topic than the
    record's own (`amity.headers.written_into`): it came with a copy, and says nothing of this record."""
    raw = find_provenance(msg.headers())
    if raw is None:
        return None
    provenance = decode(raw)
    return provenance if written_into(provenance.topic, msg.topic()) else None


def with_first_hop_stamps(messages: Iterable[Message], state: VersionState | None,
                          topic: str) -> Iterator[tuple[Message, Stamp | Refused | None]]:
    """Each record with its first-hop stamp, or REFUSED, when `state` remembers one (only a plain client's record
    has one).

    One Redis round trip per CHUNK records. Every keyed record is looked up, so that no header is decoded here:
    `version_of` decodes it, once.
    """
    iterator = iter(messages)
    while chunk := list(islice(iterator, CHUNK)):
        stamps: list[Stamp | Refused | None] = [None] * len(chunk)
        keyed = [i for i, msg in enumerate(chunk) if msg.key() is not None]
        if state is not None and keyed:
            found = state.memoised(topic, [(chunk[i].partition(), chunk[i].offset()) for i in keyed])
            for index, stamp in zip(keyed, found):
                stamps[index] = stamp
        yield from zip(chunk, stamps)


def stored_version(rule: ConflictRule, region: str, msg: Message, stamp: Stamp | Refused | None = None) -> Version:
    """The version a stored record claims in `region` (`stamp`: its first-hop stamp, for a plain record);
    MalformedProvenance, MissingOrderingField or TimestampRangeError when it claims none that can be ordered,
    RefusedAtFirstHop when its first hop refused it."""
    return version_of(rule, region, msg, own_provenance(msg), stamp)


def version_of(rule: ConflictRule, region: str, msg: Message, provenance: Provenance | None,
               stamp: Stamp | Refused | None) -> Version:
    """`stored_version`, for a caller that decoded the record's own provenance already (None: a plain record)."""
    if stamp is REFUSED and provenance is None:
        raise RefusedAtFirstHop(f"{msg.topic()}[{msg.partition()}]@{msg.offset()} was refused at its first hop out "
                                f"of {region}: its timestamp was too far ahead of the clock")
    headers = msg.headers()
    timestamp_ms = provenance.timestamp_ms if provenance is not None else msg.timestamp()[1]
    deleted = msg.value() is None
    if provenance is not None and provenance.hlc is not None:
        hlc, origin, vector = provenance.hlc, provenance.origin, provenance.vector or ()
    elif provenance is None and stamp is not None:
        hlc, origin, vector = stamp.hlc, region, stamp.vector
    else:
        origin = provenance.origin if provenance is not None else region
        hlc, vector = pack(timestamp_ms, 0), ((origin, 1),)
    field = None
    if rule.policy is Policy.TIMESTAMP and not deleted:
        field = rule.ordering_field.read(timestamp_ms, headers, msg.value())
    return Version(hlc, origin, vector, deleted, field)
