"""Records the destination refused for what they are: found out and dead-lettered, never written again and again.

A broker refuses some records for good: invalid for the topic (INVALID_RECORD: a keyless record once the topic
is compacted, say, before the link's next look at its configuration), corrupt, or too large. A write that fails
rewinds the link to its committed offsets (at-least-once) or aborts the partition's transaction (exactly-once),
and writing such a record again gets the same refusal: its partition would never move again.

The broker refuses the whole produce request a bad record is in, and the client reports the same error for every
record of it. So a refused record is first a suspect, remembered by destination topic, key and a digest of its
value. When the rewind brings a suspect back, it is written in a request of its own: refused alone, it is
refused for what it is, and the next time it comes back it is dead-lettered (reason `refused`); taken, it is
cleared.
"""

import threading
from collections import OrderedDict
from collections.abc import Mapping
from hashlib import blake2b
from types import MappingProxyType

from confluent_kafka import KafkaError

from amity.mirror.router import Routed

# INVALID_MSG is the broker's CORRUPT_MESSAGE. Not RECORD_LIST_TOO_LARGE: that refuses a batch, not its records.
REFUSING = frozenset({KafkaError.INVALID_RECORD, KafkaError.INVALID_MSG, KafkaError.MSG_SIZE_TOO_LARGE})
REMEMBERED = 10_000  # (topic, key) pairs kept; beyond, the oldest is forgotten (one more rewind if it returns)

Where = tuple[str, bytes | None]  # destination topic, key: looked up per record, before any value is digested
_NONE_REFUSED: Mapping[bytes, str] = MappingProxyType({})  # what a (topic, key) with no entry looks up, shared
_NO_SUSPECTS: frozenset[bytes] = frozenset()


def digest(value: bytes | None) -> bytes:
    return blake2b(value or b"", digest_size=16).digest()


class Refusals:
    """The records a link's destination refused or may have refused, and why; fed by delivery reports (any thread).

    Kept by (destination topic, key), then by a digest of the value: once anything was refused, every batch is
    looked up record by record, and only a record whose topic and key match has its value digested.
    """

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self._refused: OrderedDict[Where, dict[bytes, str]] = OrderedDict()
        self._suspects: OrderedDict[Where, set[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._refused or self._suspects)

    def observe(self, err: KafkaError | None, msg) -> None:
        """A delivery report of a record written with others: a refusal makes it a suspect."""
        if err is not None and err.code() in REFUSING:
            with self._lock:
                _entry(self._suspects, (msg.topic(), msg.key()), set).add(digest(msg.value()))

    def note(self, failures: list) -> None:
        """Delivery errors collected by the at-least-once bookkeeping, as (error, message) pairs."""
        for err, msg in failures:
            self.observe(err, msg)

    def settle(self, err: KafkaError | None, msg) -> None:
        """The delivery report of a suspect written alone: refused, it is refused for good; taken, it is cleared."""
        where, found = (msg.topic(), msg.key()), digest(msg.value())
        with self._lock:
            suspects = self._suspects.get(where)
            if suspects is not None:
                suspects.discard(found)
                if not suspects:
                    del self._suspects[where]
            if err is not None and err.code() in REFUSING:
                _entry(self._refused, where, dict)[found] = err.str()

    def divert(self, routed: Routed, versions: list | None, destination_topic) -> tuple[list | None, set[int]]:
        """Move the forwarded records refused for good into `routed.dead`; `versions` (aligned with
        `routed.forward`, or None) aligned with what is still forwarded, and the ids of the messages to write
        alone (the suspects). `destination_topic` maps a source topic to the topic it is written into."""
        forward, kept, alone = [], None if versions is None else [], set()
        with self._lock:
            for index, (msg, headers) in enumerate(routed.forward):
                where = (destination_topic(msg.topic()), msg.key())
                refused, suspects = self._refused.get(where, _NONE_REFUSED), self._suspects.get(where, _NO_SUSPECTS)
                if refused or suspects:
                    found = digest(msg.value())
                    reason = refused.get(found)
                    if reason is not None:
                        routed.dead.append((msg, "refused", f"{self.destination} refused this record: {reason}"))
                        continue
                    if found in suspects:
                        alone.add(id(msg))
                forward.append((msg, headers))
                if kept is not None:
                    kept.append(versions[index])
        routed.forward = forward
        return kept, alone


def _entry(records: OrderedDict, where: Where, new):
    """The entry of `where`, made with `new` if missing; the oldest entries are forgotten past REMEMBERED."""
    entry = records.get(where)
    if entry is None:
        entry = records[where] = new()
        while len(records) > REMEMBERED:
            records.popitem(last=False)
    return entry
