"""A dead letter keeps the record as it was, and always fits the dead-letter topic."""

from amity.mirror.link import DLQ_VALUE_LIMIT, dead_letter
from tests.unit.mirror.stubs import StubMessage


def test_a_dead_letter_keeps_key_value_and_headers_and_says_why() -> None:
    msg = StubMessage(topic_="orders", partition_=2, offset_=7, headers_=[("trace", b"t1")])
    key, value, headers = dead_letter(msg, "us", "bad-msgpack", "cannot decode")
    assert (key, value) == (b"k", b"v")
    assert headers == [("trace", b"t1"), ("amity-dlq-reason", b"bad-msgpack"),
                       ("amity-dlq-detail", b"cannot decode"), ("amity-dlq-source", b"us/orders/2/7")]


def test_a_key_value_or_headers_too_large_for_a_dead_letter_are_left_out_with_their_size() -> None:
    big = b"x" * (DLQ_VALUE_LIMIT + 1)
    msg = StubMessage(key_=big, value_=big, headers_=[("a", big), ("b", None)])
    key, value, headers = dead_letter(msg, "us", "too-large", "")
    assert key is None and value is None
    said = dict(headers)
    assert said["amity-dlq-key-omitted"] == said["amity-dlq-value-omitted"] == str(len(big)).encode()
    assert said["amity-dlq-headers-omitted"] == f"2 headers, {len(big) + 2} bytes".encode()
    assert "a" not in said and said["amity-dlq-reason"] == b"too-large"
