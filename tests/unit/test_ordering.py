"""Reading the timestamp policy's ordering field from a record's timestamp, headers or JSON value."""

import json

import pytest

from amity.errors import AmityError
from amity.ordering import MAX_FIELD, MissingOrderingField, OrderingField

TIMESTAMP = OrderingField.parse("timestamp")
HEADER = OrderingField.parse("header:updated-at")
JSON = OrderingField.parse("json:meta.updated_at")


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_the_record_timestamp() -> None:
    assert TIMESTAMP.read(1_700_000_000_000, None, None) == 1_700_000_000_000


def test_a_header_as_decimal_milliseconds() -> None:
    assert HEADER.read(0, [("updated-at", b"1700000000123")], None) == 1_700_000_000_123


def test_the_last_of_repeated_headers_counts() -> None:
    headers = [("updated-at", b"5"), ("other", b"9"), ("updated-at", b"7")]
    assert HEADER.read(0, headers, None) == 7


def test_a_nested_json_member() -> None:
    assert JSON.read(0, None, body(meta={"updated_at": 42})) == 42


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:01Z", 1_000),
        ("2023-11-14T22:13:20.123+00:00", 1_700_000_000_123),
        ("2023-11-14T23:13:20.123+01:00", 1_700_000_000_123),
    ],
)
def test_iso_date_times_with_an_offset(text: str, ms: int) -> None:
    assert JSON.read(0, None, body(meta={"updated_at": text})) == ms
    assert HEADER.read(0, [("updated-at", text.encode())], None) == ms


def test_a_decimal_string_in_json() -> None:
    assert JSON.read(0, None, body(meta={"updated_at": "17"})) == 17


@pytest.mark.parametrize(
    ("field", "timestamp", "headers", "value", "message"),
    [
        (HEADER, 0, None, None, "header 'updated-at' is missing"),
        (HEADER, 0, [("other", b"1")], None, "is missing"),
        (HEADER, 0, [("updated-at", None)], None, "is missing"),
        (HEADER, 0, [("updated-at", b" 12")], None, "neither an integer nor an ISO-8601"),
        (HEADER, 0, [("updated-at", b"1_000")], None, "neither an integer"),
        (HEADER, 0, [("updated-at", b"\xff")], None, "not ASCII"),
        (HEADER, 0, [("updated-at", b"99999999999999999999")], None, "neither an integer"),
        (JSON, 0, None, None, "JSON field 'meta.updated_at' is missing"),
        (JSON, 0, None, b"not json", "not JSON"),
        (JSON, 0, None, b"[" * 100_000, "nests too deeply"),
        (JSON, 0, None, body(meta=3), "is missing"),
        (JSON, 0, None, body(meta={}), "is missing"),
        (JSON, 0, None, body(meta={"updated_at": None}), "is missing"),
        (JSON, 0, None, body(meta={"updated_at": 1.5}), "expected milliseconds"),
        (JSON, 0, None, body(meta={"updated_at": True}), "expected milliseconds"),
        (JSON, 0, None, body(meta={"updated_at": -1}), "expected milliseconds"),
        (JSON, 0, None, body(meta={"updated_at": MAX_FIELD + 1}), "expected milliseconds"),
        (JSON, 0, None, body(meta={"updated_at": "2023-11-14T22:13:20"}), "needs a UTC offset"),
        (JSON, 0, None, body(meta={"updated_at": "1969-12-31T23:59:59Z"}), "expected milliseconds"),
        (JSON, 0, None, body(meta={"updated_at": "yesterday"}), "neither an integer nor an ISO-8601"),
        (TIMESTAMP, -1, None, None, "the record timestamp is -1"),
    ],
)
def test_missing_or_unreadable_fields_are_refused(
    field: OrderingField, timestamp: int, headers: list | None, value: bytes | None, message: str
) -> None:
    with pytest.raises(MissingOrderingField, match=message):
        field.read(timestamp, headers, value)


def test_missing_ordering_field_is_an_amity_error() -> None:
    assert issubclass(MissingOrderingField, AmityError)
