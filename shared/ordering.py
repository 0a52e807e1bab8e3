"""The ordering field of the timestamp policy: where in a record its time is read.

A rule names it as `timestamp` (the record timestamp), `header:<name>` (a
header) or `json:<dotted.path>` (a member of a JSON object value). The value is
milliseconds since the Unix epoch, written as a decimal integer or as an
ISO-8601 date-time with a UTC offset; milliseconds because tombstones, which
have no value to read, are ordered by the physical time of their hybrid clock.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

from amity.errors import AmityError

MAX_FIELD = (1 << 63) - 1
_DIGITS = re.compile(r"[0-9]{1,19}")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MILLISECOND = timedelta(milliseconds=1)

Headers = Iterable[tuple[str, bytes | None]] | None


class MissingOrderingField(AmityError):
    """A record lacks what its topic's policy orders by, or carries it in a form that cannot be read.

    The caller dead-letters the record: guessing an order would let replicas disagree.
    """


class Source(StrEnum):
    TIMESTAMP = "timestamp"
    HEADER = "header"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class OrderingField:
    """A parsed `field` setting."""

    source: Source
    name: str = ""  # header name, or the dotted JSON path as written
    path: tuple[str, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> "OrderingField":
        """The field a rule's `field` setting names; ValueError says what is wrong."""
        if spec == Source.TIMESTAMP:
            return cls(Source.TIMESTAMP)
        kind, sep, name = spec.partition(":")
        if not sep or kind not in (Source.HEADER, Source.JSON) or not name:
            raise ValueError(f"field {spec!r} must be 'timestamp', 'header:<name>' or 'json:<dotted.path>'")
        if kind == Source.HEADER:
            return cls(Source.HEADER, name)
        path = tuple(name.split("."))
        if not all(path):
            raise ValueError(f"field {spec!r} has an empty step in its JSON path")
        return cls(Source.JSON, name, path)

    def read(self, timestamp_ms: int, headers: Headers, value: bytes | None) -> int:
        """The record's ordering value in ms, or MissingOrderingField."""
        if self.source is Source.TIMESTAMP:
            return _milliseconds(timestamp_ms, "the record timestamp")
        if self.source is Source.HEADER:
            return _milliseconds(_last_header(headers, self.name), f"header {self.name!r}")
        return _milliseconds(_json_member(value, self.path, self.name), f"JSON field {self.name!r}")


def _last_header(headers: Headers, name: str) -> str | None:
    """The last header called `name`, as Kafka's own clients pick among repeats."""
    found: bytes | None = None
    for key, raw in headers or ():
        if key == name:
            found = raw
    if found is None:
        return None
    try:
        return found.decode("ascii")
    except UnicodeDecodeError:
        raise MissingOrderingField(f"header {name!r} is not ASCII text") from None


def _json_member(value: bytes | None, path: tuple[str, ...], name: str) -> object:
    if value is None:
        return None
    try:
        member: object = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise MissingOrderingField(f"the record value is not JSON, so field {name!r} cannot be read") from None
    except RecursionError:  # not a ValueError: json gives up on arrays or objects nested a few thousand deep
        raise MissingOrderingField(f"the record value nests too deeply to read field {name!r}") from None
    for step in path:
        if not isinstance(member, dict):
            return None
        member = member.get(step)
    return member


def _milliseconds(raw: object, what: str) -> int:
    if raw is None:
        raise MissingOrderingField(f"{what} is missing: the timestamp policy needs it to order the record")
    if isinstance(raw, str):
        raw = int(raw) if _DIGITS.fullmatch(raw) else _iso_milliseconds(raw, what)
    if type(raw) is not int or not 0 <= raw <= MAX_FIELD:
        raise MissingOrderingField(f"{what} is {raw!r}: expected milliseconds since the epoch (0..{MAX_FIELD})")
    return raw


def _iso_milliseconds(text: str, what: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MissingOrderingField(f"{what} is {text!r}: neither an integer nor an ISO-8601 date-time") from None
    if moment.tzinfo is None:
        raise MissingOrderingField(f"{what} is {text!r}: an ISO-8601 date-time needs a UTC offset (e.g. Z)")
    return (moment - _EPOCH) // _MILLISECOND
