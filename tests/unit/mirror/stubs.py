"""A stand-in for confluent_kafka.Message, which cannot be built from Python."""

from dataclasses import dataclass, field


@dataclass
class StubMessage:
    topic_: str = "orders"
    partition_: int = 0
    offset_: int = 0
    key_: bytes | None = b"k"
    value_: bytes | None = b"v"
    headers_: list | None = None
    timestamp_: int = 1_700_000_000_000
    error_: object = field(default=None)

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes | None:
        return self.key_

    def value(self) -> bytes | None:
        return self.value_

    def headers(self) -> list | None:
        return self.headers_

    def timestamp(self) -> tuple[int, int]:
        return (1, self.timestamp_)

    def error(self) -> object:
        return self.error_
