"""Origin streams: the unit in which the mirror preserves order, and so the unit of translation.

A stream is (origin region, origin topic, origin partition). The mirror copies
one stream in order, so in every region the records of a stream appear in
increasing origin offset (a mirror that crashed may write a run of them again).
A record with no `amity-prov` header was produced where it sits: its stream is
that region's own topic and partition, and its origin offset is its own offset.

A frontier maps each stream to the highest origin offset seen (or processed):
it describes a position in terms every region understands, which is what makes
exact translation possible.
"""

import re
from collections.abc import Iterable, Mapping

import msgpack

from amity.headers import FORMAT_VERSION, MAX_HEADER_BYTES, PROVENANCE_HEADER
from amity.regions import REGION_NAME

Stream = tuple[str, str, int]
Frontier = dict[Stream, int]

_FIELDS = 9
_MAX_INT32 = (1 << 31) - 1
_MAX_INT64 = (1 << 63) - 1
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_MEMO_SIZE = 1024
_good_regions: set[str] = set()
_good_topics: set[str] = set()


def mirrored_origin(raw: bytes, region: str) -> tuple[Stream, int] | None:
    """The stream and origin offset that a header read in `region` names; None unless Amity wrote it there.

    This runs per record on the checkpointer's tailer, so it reads only the
    five fields it needs instead of the full `amity.headers.decode` (about a
    tenth of the cost). It is as strict as `decode` and `check_consistent` on
    those fields; a header they would refuse counts the record as local, which
    is what it is: written into `region` by something other than the mirror.
    """
    if len(raw) > MAX_HEADER_BYTES:
        return None
    try:
        fields = msgpack.unpackb(raw, use_list=False)
    except ValueError:
        return None
    if type(fields) is not tuple or len(fields) != _FIELDS or type(fields[0]) is not int or fields[0] != FORMAT_VERSION:
        return None
    _, origin, topic, partition, offset, _, path, _, _ = fields
    if (type(origin) is not str or type(topic) is not str or type(partition) is not int or type(offset) is not int
            or type(path) is not tuple or len(path) < 2
            or path[0] != origin or path[-1] != region or origin == region
            or not 0 <= partition <= _MAX_INT32 or not 0 <= offset <= _MAX_INT64
            or not (origin in _good_regions or _valid(origin, REGION_NAME, _good_regions))
            or not (topic in _good_topics or _valid(topic, _TOPIC, _good_topics))):
        return None
    return (origin, topic, partition), offset


def _valid(name: str, pattern: re.Pattern[str], good: set[str]) -> bool:
    """A region or topic name as `decode` accepts it, remembered: the same few names recur on every record."""
    if name in (".", "..") or not pattern.fullmatch(name):
        return False
    if len(good) < _MEMO_SIZE:
        good.add(name)
    return True


def provenance_value(headers: list[tuple[str, bytes | None]] | None) -> bytes | None:
    """The single `amity-prov` value among a record's headers; None if absent, repeated or null (a local record)."""
    found = None
    for key, value in headers or ():
        if key == PROVENANCE_HEADER:
            if found is not None or value is None:
                return None
            found = value
    return found


def advance(frontier: Frontier, stream: Stream, origin_offset: int) -> None:
    """Raise the stream's highest origin offset to `origin_offset` if it is higher."""
    if frontier.get(stream, -1) < origin_offset:
        frontier[stream] = origin_offset


def merged(frontiers: Iterable[Mapping[Stream, int]]) -> Frontier:
    """The per-stream maximum of several frontiers."""
    result: Frontier = {}
    for frontier in frontiers:
        for stream, offset in frontier.items():
            advance(result, stream, offset)
    return result


def to_wire(frontier: Mapping[Stream, int]) -> list[list]:
    """A frontier as a sorted list of [origin, topic, partition, offset]: compact in msgpack and JSON, deterministic."""
    return sorted([*stream, offset] for stream, offset in frontier.items())


def from_wire(entries: Iterable[Iterable]) -> Frontier:
    """The frontier `to_wire` wrote."""
    return {(origin, topic, partition): offset for origin, topic, partition, offset in entries}


def describe(stream: Stream) -> str:
    """`origin/topic/partition`, the way streams are shown to people."""
    return f"{stream[0]}/{stream[1]}/{stream[2]}"


def origin_of(headers: list[tuple[str, bytes | None]] | None, region: str, local: Stream,
              offset: int) -> tuple[Stream, int]:
    """The stream and origin offset of a record at `offset` in `region`; `local` is its own topic and partition."""
    raw = provenance_value(headers) if headers else None
    found = mirrored_origin(raw, region) if raw is not None else None
    return found if found is not None else (local, offset)
