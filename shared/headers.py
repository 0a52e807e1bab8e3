"""The provenance header: where a mirrored record came from and which regions it has crossed.

Every record Amity writes into a destination region carries one `amity-prov`
header, a msgpack array (docs/headers.md has the byte layout):

    [1, origin, topic, partition, offset, timestamp_ms, path, hlc, vector]

The header is read from records produced by anyone who can write to a topic,
so `decode` treats it as untrusted input: whatever the bytes, it returns a
valid `Provenance` or raises `MalformedProvenance` with a short, stable reason
code that the mirror uses as a metric label and as the dead-letter reason.
A `Provenance` cannot hold invalid values, so what decodes also re-encodes,
and what encodes also decodes.
"""

import re
from enum import StrEnum
from typing import NamedTuple

import msgpack

from amity import vectors
from amity.clock import MAX_HLC
from amity.errors import AmityError
from amity.packing import packb
from amity.regions import REGION_NAME

PROVENANCE_HEADER = "amity-prov"
FORMAT_VERSION = 1
MAX_PATH = 16
MAX_HEADER_BYTES = 4096

_FIELDS = 9
_NINE_FIELDS = b"\x99"  # msgpack fixarray header of the 9 fields
_MAX_INT32 = (1 << 31) - 1
_MAX_INT64 = (1 << 63) - 1
_TOPIC = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_MEMO_SIZE = 1024
_valid_regions: set[str] = set()
_valid_topics: set[str] = set()
_valid_routes: set[tuple[str, str, tuple[str, ...]]] = set()  # (origin, topic, path) found valid
_valid_vector_regions: set[tuple[str, ...]] = set()  # a vector's regions, in its order, found valid


class Reason(StrEnum):
    """Why a provenance header was refused; stable, used as a metric label and dead-letter header."""

    TOO_LARGE = "too-large"
    BAD_MSGPACK = "bad-msgpack"
    BAD_SHAPE = "bad-shape"
    BAD_TYPE = "bad-type"
    UNKNOWN_VERSION = "unknown-version"
    BAD_NUMBER = "bad-number"
    BAD_REGION = "bad-region"
    BAD_TOPIC = "bad-topic"
    BAD_PATH = "bad-path"
    BAD_VECTOR = "bad-vector"
    DUPLICATE_HEADER = "duplicate-header"
    FORGED = "forged"


class MalformedProvenance(AmityError):
    """A provenance header that Amity cannot trust: the record goes to the dead-letter topic."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"malformed {PROVENANCE_HEADER} header ({self.reason}): {self.detail}"


class _Fields(NamedTuple):
    origin: str
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    path: tuple[str, ...]
    hlc: int | None = None
    vector: vectors.Vector | None = None


class Provenance(_Fields):
    """A record's origin coordinates and the regions it has been written into, origin first.

    `path` is (A, B) for a record produced in A and mirrored once into B.
    `hlc` is a packed hybrid timestamp (amity.clock); `vector` a canonical
    version vector (amity.vectors): both are None when no conflict rule applies.

    Every value is checked when one is built. A named tuple rather than a frozen
    dataclass: `decode` builds one for every mirrored record a link reads,
    loop drops included, and a tuple is several times cheaper to build.
    """

    __slots__ = ()

    def __new__(cls, origin: str, topic: str, partition: int, offset: int, timestamp_ms: int,
                path: tuple[str, ...], hlc: int | None = None, vector: vectors.Vector | None = None) -> "Provenance":
        _check_fields(origin, topic, partition, offset, timestamp_ms, path, hlc, vector)
        return tuple.__new__(cls, (origin, topic, partition, offset, timestamp_ms, path, hlc, vector))

    def crossed(self, region: str) -> "Provenance":
        """This provenance after the record is written into `region`."""
        return Provenance(
            self.origin, self.topic, self.partition, self.offset, self.timestamp_ms, (*self.path, region), self.hlc, self.vector
        )


def encode(provenance: Provenance) -> bytes:
    """The header value for `provenance`; deterministic, so equal values give equal bytes."""
    p = provenance
    vector = None if p.vector is None else dict(p.vector)
    return packb(
        (FORMAT_VERSION, p.origin, p.topic, p.partition, p.offset, p.timestamp_ms, p.path, p.hlc, vector)
    )


def encode_fields(origin: str, topic: str, partition: int, offset: int, timestamp_ms: int, path: tuple[str, ...],
                  hlc: int | None, vector: vectors.Vector | None) -> bytes:
    """A header from trusted parts (the mirror's own stamps and the broker's coordinates), without checks."""
    return packb((FORMAT_VERSION, origin, topic, partition, offset, timestamp_ms, path, hlc,
                  None if vector is None else dict(vector)))


def encode_stamped(origin: str, topic: str, partition: int, offset: int, timestamp_ms: int, path: tuple[str, ...],
                   hlc: int, vector: bytes) -> bytes:
    """`encode_fields` with the vector already packed as a msgpack map (`amity.state.pack_vector`), as stamps come.

    The vector is the array's last element, so its bytes are appended as they are.
    """
    head = packb((FORMAT_VERSION, origin, topic, partition, offset, timestamp_ms, path, hlc))
    return _NINE_FIELDS + head[1:] + vector


def encode_first_hop(origin: str, topic: str, partition: int, offset: int, timestamp_ms: int, region: str) -> bytes:
    """The header of a locally produced record as it is first mirrored from `origin` into `region`.

    Every value comes from the consumed record's own coordinates (trusted, as the
    broker reported them), so no Provenance is built per record.
    """
    return packb(
        (FORMAT_VERSION, origin, topic, partition, offset, timestamp_ms, (origin, region), None, None)
    )


def decode(raw: bytes) -> Provenance:
    """The provenance in a header value, or MalformedProvenance: never any other exception."""
    if len(raw) > MAX_HEADER_BYTES:
        raise MalformedProvenance(Reason.TOO_LARGE, f"{len(raw)} bytes, more than {MAX_HEADER_BYTES}")
    try:
        fields = msgpack.unpackb(raw, use_list=False, object_pairs_hook=list)
    except ValueError as exc:  # every msgpack parse failure, including bad UTF-8, is a ValueError
        raise MalformedProvenance(Reason.BAD_MSGPACK, f"not one msgpack value: {exc}") from None
    return _recognised(fields) or _checked(fields)


def _recognised(fields: object) -> Provenance | None:
    """The provenance when each field has a form found valid before, checked in one pass; None when any has not.

    Every record a link reads back carries one of a few (origin, topic, path) routes and vector regions, and
    only its numbers change: this is the whole check for nearly every header, and `_checked` runs, with its
    reasons, for the rest.
    """
    if type(fields) is not tuple or len(fields) != _FIELDS:
        return None
    version, origin, topic, partition, offset, timestamp_ms, path, hlc, vector = fields
    try:
        if (origin, topic, path) not in _valid_routes:
            return None
    except TypeError:  # an unhashable value where a name belongs
        return None
    if not (type(version) is int and version == FORMAT_VERSION and type(partition) is int
            and type(offset) is int and type(timestamp_ms) is int and 0 <= partition <= _MAX_INT32
            and 0 <= offset <= _MAX_INT64 and 0 <= timestamp_ms <= _MAX_INT64):
        return None
    if hlc is not None and not (type(hlc) is int and 0 <= hlc <= MAX_HLC):
        return None
    if vector is not None:
        vector = _recognised_vector(vector)
        if vector is None:
            return None
    return tuple.__new__(Provenance, (origin, topic, partition, offset, timestamp_ms, path, hlc, vector))


def _recognised_vector(pairs: object) -> vectors.Vector | None:
    """A wire vector whose regions, in their order, were found valid before and whose counters are in range."""
    if type(pairs) is not list:
        return None
    vector = tuple(pairs)
    try:
        if tuple([region for region, _ in vector]) not in _valid_vector_regions:
            return None
    except TypeError:
        return None
    for _, counter in vector:
        if type(counter) is not int or not 0 < counter <= vectors.MAX_COUNTER:
            return None
    return vector


def _checked(fields: object) -> Provenance:
    """The provenance in decoded header fields after every check, or MalformedProvenance saying which failed."""
    if type(fields) is not tuple or not fields:
        raise MalformedProvenance(Reason.BAD_SHAPE, f"expected a msgpack array, got {_kind(fields)}")
    version = fields[0]
    if type(version) is not int:
        raise MalformedProvenance(Reason.BAD_TYPE, f"format version is {_kind(version)}, not an integer")
    if version != FORMAT_VERSION:
        raise MalformedProvenance(Reason.UNKNOWN_VERSION, f"format version {version}; this Amity reads {FORMAT_VERSION}")
    if len(fields) != _FIELDS:
        raise MalformedProvenance(Reason.BAD_SHAPE, f"version 1 has {_FIELDS} fields, this header {len(fields)}")
    _, origin, topic, partition, offset, timestamp_ms, path, hlc, vector = fields
    if vector is not None:
        vector = _vector_from_wire(vector)
    # Provenance.__new__'s two steps, inline: its Python frame is a tenth of a decode.
    _check_fields(origin, topic, partition, offset, timestamp_ms, path, hlc, vector)
    return tuple.__new__(Provenance, (origin, topic, partition, offset, timestamp_ms, path, hlc, vector))


class Shapes:
    """Headers recognised from their bytes alone, without decoding them, by the shape found valid before.

    A shape is what stays the same across a route's records: origin, topic, path, whether a clock is set
    and the vector's regions. Its pattern accepts exactly the headers of that shape whose numbers are in
    range, in msgpack's unsigned integer forms (other encodings of valid values are left to `decode`). A
    link that drops every record of a shape (a loop) needs nothing else from the header, and a pattern
    match costs about a seventh of a decode (0.32 against 2.3 µs, timeit).
    """

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self._patterns: dict[tuple, tuple[re.Pattern[bytes], object]] = {}  # shape -> its pattern and value

    def add(self, provenance: Provenance, value: object) -> None:
        """Remember `provenance`'s shape with `value`, up to `limit` shapes; a shape is added once."""
        shape = shape_of(provenance)
        if shape not in self._patterns and len(self._patterns) < self.limit:
            self._patterns[shape] = (_pattern(*shape), value)

    def find(self, raw: bytes) -> object | None:
        """The value of the shape whose pattern matches the whole header, None when none does."""
        for pattern, value in self._patterns.values():
            if pattern.fullmatch(raw):
                return value
        return None


def shape_of(p: Provenance) -> tuple:
    """What a header shares with every other of its route: origin, topic, path, clock or not, vector regions."""
    return p.origin, p.topic, p.path, p.hlc is None, None if p.vector is None else tuple(r for r, _ in p.vector)


# msgpack's unsigned integer forms of the values in a range (fixint, uint8, uint16, uint32, uint64).
_U31 = rb"(?:[\x00-\x7f]|\xcc.|\xcd..|\xce[\x00-\x7f]...)"
_U63 = rb"(?:[\x00-\x7f]|\xcc.|\xcd..|\xce....|\xcf[\x00-\x7f].{7})"
_U64 = rb"(?:[\x00-\x7f]|\xcc.|\xcd..|\xce....|\xcf.{8})"
_COUNTER = rb"(?:[\x01-\x7f]|\xcc[\x01-\xff]|\xcd(?!\x00\x00)..|\xce(?!\x00{4})....|\xcf\x00\x00(?!\x00{6}).{6})"
_NIL = re.escape(b"\xc0")


def _pattern(origin: str, topic: str, path: tuple[str, ...], clockless: bool,
             regions: tuple[str, ...] | None) -> re.Pattern[bytes]:
    """The bytes of every valid header of one shape; the counters' range is 1..2**48-1 (vectors.MAX_COUNTER)."""
    parts = [re.escape(_NINE_FIELDS + packb(FORMAT_VERSION) + packb(origin) + packb(topic)), _U31, _U63, _U63,
             re.escape(packb(path)), _NIL if clockless else _U64]
    if regions is None:
        parts.append(_NIL)
    else:
        parts.append(re.escape(_map_header(len(regions))))
        parts.extend(re.escape(packb(region)) + _COUNTER for region in regions)
    return re.compile(b"".join(parts), re.DOTALL)


def _map_header(size: int) -> bytes:
    return bytes([0x80 | size]) if size < 16 else b"\xde" + size.to_bytes(2, "big")


def find_provenance(headers: list[tuple[str, bytes | None]] | None) -> bytes | None:
    """The raw `amity-prov` value among a record's headers, None when the record has none."""
    found = None
    for key, value in headers or ():
        if key != PROVENANCE_HEADER:
            continue
        if found is not None:
            raise MalformedProvenance(Reason.DUPLICATE_HEADER, f"the record carries {PROVENANCE_HEADER} more than once")
        if value is None:
            raise MalformedProvenance(Reason.BAD_TYPE, f"the record's {PROVENANCE_HEADER} header has a null value")
        found = value
    return found


def with_provenance(headers: list[tuple[str, bytes | None]] | None, value: bytes) -> list[tuple[str, bytes | None]]:
    """The record's headers, unchanged and in order, with `value` as its only `amity-prov` header, last."""
    if not headers:
        return [(PROVENANCE_HEADER, value)]
    kept = [header for header in headers or () if header[0] != PROVENANCE_HEADER]
    kept.append((PROVENANCE_HEADER, value))
    return kept


def written_into(origin_topic: str, topic: str) -> bool:
    """Whether Amity can have written a header naming `origin_topic` into `topic`: the same name, or a prefixed copy
    of it (`us.orders`). Otherwise an application copied the record with its headers into another topic (Kafka
    Streams forwards headers by default), and the record is that topic's own local write, not a mirrored one."""
    return topic == origin_topic or (topic.endswith(origin_topic) and topic[-len(origin_topic) - 1] == ".")


def check_consistent(provenance: Provenance, read_from_region: str) -> None:
    """Refuse a header that Amity cannot have written into the region the record was read from.

    Amity writes the header when it mirrors a record, and the path then ends
    with the region it wrote into, after at least the origin. The stamping
    producer (`amity.Producer`) writes a path of its own region alone, always
    with a hybrid timestamp. A plain client's record has no header at all.
    Anything else was copied or replayed from another cluster, or written by
    hand: it is not evidence of where the record has been, and trusting it
    would drop or misroute the record.
    """
    path = provenance.path
    if len(path) < 2 and (provenance.hlc is None or path[0] != read_from_region):
        raise MalformedProvenance(
            Reason.FORGED,
            f"record read from {read_from_region!r} has a provenance path {_arrows(path)} of one region "
            "without a stamp of that region; Amity writes such a header only when mirroring or stamping",
        )
    if path[-1] != read_from_region:
        raise MalformedProvenance(
            Reason.FORGED,
            f"record read from {read_from_region!r} has a provenance path {_arrows(path)} that ends elsewhere; "
            "it was copied or replayed from another cluster",
        )


def _vector_from_wire(vector: object) -> vectors.Vector:
    if type(vector) is not list:  # object_pairs_hook turns maps, and only maps, into lists
        raise MalformedProvenance(Reason.BAD_TYPE, f"vector is {_kind(vector)}, not a map")
    return tuple(vector)


def _check_fields(origin: object, topic: object, partition: object, offset: object, timestamp_ms: object,
                  path: object, hlc: object, vector: object) -> None:
    """Every check of a provenance, in field order; (origin, topic, path) combinations found valid before are
    not checked again, since the same few recur on every record."""
    try:
        known = (origin, topic, path) in _valid_routes
    except TypeError:  # an unhashable value (a map where a name belongs) is refused by the checks below
        known = False
    if not known:
        _check_region(origin, "origin")
        _check_topic(topic)
    _check_int(partition, "partition", _MAX_INT32)
    _check_int(offset, "offset", _MAX_INT64)
    _check_int(timestamp_ms, "timestamp_ms", _MAX_INT64)
    if not known:
        _check_path(path, origin)
        if len(_valid_routes) < _MEMO_SIZE:
            _valid_routes.add((origin, topic, path))
    if hlc is not None:
        _check_int(hlc, "hlc", MAX_HLC)
    if vector is not None:
        _check_vector(vector)


def _check_int(value: object, name: str, maximum: int) -> None:
    if type(value) is not int:
        raise MalformedProvenance(Reason.BAD_TYPE, f"{name} is {_kind(value)}, not an integer")
    if not 0 <= value <= maximum:
        raise MalformedProvenance(Reason.BAD_NUMBER, f"{name} {value} is outside 0..{maximum}")


def _check_region(value: object, name: str) -> None:
    if type(value) is not str:
        raise MalformedProvenance(Reason.BAD_TYPE, f"{name} is {_kind(value)}, not a string")
    if not _matches(REGION_NAME, _valid_regions, value):
        raise MalformedProvenance(Reason.BAD_REGION, f"{name} {value!r} is not a region name")


def _check_topic(value: object) -> None:
    if type(value) is not str:
        raise MalformedProvenance(Reason.BAD_TYPE, f"topic is {_kind(value)}, not a string")
    if value in (".", "..") or not _matches(_TOPIC, _valid_topics, value):
        raise MalformedProvenance(Reason.BAD_TOPIC, f"topic {value[:300]!r} is not a valid Kafka topic name")


def _matches(pattern: re.Pattern[str], seen: set[str], value: str) -> bool:
    """`pattern.fullmatch(value)`, remembering up to _MEMO_SIZE valid values: the same few names recur per record."""
    if value in seen:
        return True
    if not pattern.fullmatch(value):
        return False
    if len(seen) < _MEMO_SIZE:
        seen.add(value)
    return True


def _check_path(path: object, origin: str) -> None:
    if type(path) is not tuple:
        raise MalformedProvenance(Reason.BAD_TYPE, f"path is {_kind(path)}, not a tuple")
    if not 1 <= len(path) <= MAX_PATH:
        raise MalformedProvenance(Reason.BAD_PATH, f"path has {len(path)} regions, not 1..{MAX_PATH}")
    for region in path:
        _check_region(region, "path entry")
    if len(set(path)) != len(path):
        raise MalformedProvenance(Reason.BAD_PATH, f"path {_arrows(path)} visits a region twice")
    if path[0] != origin:
        raise MalformedProvenance(Reason.BAD_PATH, f"path {_arrows(path)} does not start at origin {origin!r}")


def _check_vector(vector: object) -> None:
    """Same canonical form as amity.vectors.checked produces, checked without building a copy."""
    if type(vector) is not tuple:
        raise MalformedProvenance(Reason.BAD_TYPE, f"vector is {_kind(vector)}, not a tuple of (region, counter)")
    if len(vector) > vectors.MAX_ENTRIES:
        raise MalformedProvenance(Reason.BAD_VECTOR, f"vector has {len(vector)} entries, more than {vectors.MAX_ENTRIES}")
    previous = ""
    for entry in vector:
        if type(entry) is not tuple or len(entry) != 2:
            raise MalformedProvenance(Reason.BAD_VECTOR, f"vector entry {entry!r} is not a (region, counter) pair")
        region, counter = entry
        if type(region) is not str or not _matches(REGION_NAME, _valid_regions, region):
            raise MalformedProvenance(Reason.BAD_VECTOR, f"vector entry names {region!r}, which is not a region name")
        if region <= previous:
            raise MalformedProvenance(Reason.BAD_VECTOR, f"vector entries are not sorted by region with none repeated at {region!r}")
        if type(counter) is not int or not 0 < counter <= vectors.MAX_COUNTER:
            raise MalformedProvenance(
                Reason.BAD_VECTOR, f"vector counter {counter!r} for {region!r} is not an integer in 1..{vectors.MAX_COUNTER}"
            )
        previous = region
    if len(_valid_vector_regions) < _MEMO_SIZE:
        _valid_vector_regions.add(tuple(region for region, _ in vector))


def _kind(value: object) -> str:
    return "nil" if value is None else type(value).__name__


def _arrows(path: tuple[str, ...]) -> str:
    return " -> ".join(path) or "(empty)"
