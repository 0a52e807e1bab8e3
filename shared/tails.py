"""Each key's last record in a region's topic is its winning version: what log compaction keeps.

Resolution decides in Redis first and writes to Kafka after, and two writers
of one region (the mirror and an application's `amity.Producer`, or two
producers) race between those steps: a version decided first can land after a
newer one. The resolved view is right either way, but the log's last record
per key, the one compaction keeps and a plain consumer sees last, would be a
loser in one region and the winner in another.

So every writer that takes part reports each record of a resolved topic once
Kafka acknowledged it: a `Landing` (its state hash, rank, partition, offset).
One script call per batch keeps, in the key's state hash next to the held
version (amity.state):

| field | what |
|---|---|
| `l` | five msgpack values in a row: `tp`, `to`, partition and offset of the last record landed for the key (its tail); `wp`, `wo`, `wr`, partition, offset and rank of the last landed copy of a held version (nil until one landed) |

One field rather than five: the script reads and writes it whole, and every
other script scans a shorter hash.

When a copy of the held version landed before the tail (so the tail is a
version that lost), the script answers a `Repair`: the writer reads that copy
back (`Repairer`) and appends it again, and the new copy lands as the tail. The
writer whose landing comes last always sees the race, whichever order the
landings arrive in, so nobody has to watch the log.

A crash between acknowledgement and landing loses no repair: the mirror lands
before it commits its source offsets, so the record comes again and lands as
a duplicate. Records written by plain Kafka clients are not reported: their
region's log tail carries no such guarantee (docs/conflicts.md).
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import msgpack
import redis
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from amity.regions import Region

log = logging.getLogger(__name__)

_new = tuple.__new__
MAX_ROUNDS = 3  # a repair's copy lands like any record; more rounds mean writers keep racing on the key
READ_TIMEOUT_S = 10.0


class Landing(NamedTuple):
    """One acknowledged record of a resolved topic, where it sits and the version it carries (one per record:
    a named tuple is cheaper to build than a frozen dataclass)."""

    state_key: bytes
    rank: bytes
    key: bytes
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Repair:
    """The key's tail ranks below its held version, whose copy sits at (`topic`, `partition`, `offset`)."""

    landing: Landing  # the landing that found the race
    partition: int
    offset: int
    rank: bytes  # the held version's


# ARGV[1]: msgpack array of state hash, rank, partition, offset, landing after landing (the hashes in the array,
# not as KEYS, as in amity.state's scripts).
# Returns {i, winner partition, winner offset, held rank, ...} for each landing that found the tail wrong.
# The tail is the winner exactly when it is the held version's last landed copy, so its rank need not be kept.
_LAND_LUA = """
local flat = cmsgpack.unpack(ARGV[1])
local out, found = {}, 0
for i = 1, #flat / 4 do
  local key, rank, partition, offset = flat[4 * i - 3], flat[4 * i - 2], flat[4 * i - 1], flat[4 * i]
  local s = redis.call('HMGET', key, 'r', 'l')
  local held = s[1]
  if held then
    local tp, to, wp, wo, wr
    if s[2] then tp, to, wp, wo, wr = cmsgpack.unpack(s[2]) end
    local tail = not to or tp ~= partition or offset > to
    local copy = rank == held and (wr ~= held or wp ~= partition or offset > wo)
    if tail then tp, to = partition, offset end
    if copy then wp, wo, wr = partition, offset, rank end
    if tail or copy then redis.call('HSET', key, 'l', cmsgpack.pack(tp, to, wp, wo, wr)) end
    if wr == held and wp == tp and wo < to then
      out[found + 1], out[found + 2], out[found + 3], out[found + 4] = i, wp, wo, held
      found = found + 4
    end
  end
end
return out
"""


class TailState:
    """The landing script over one region's Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._land = client.register_script(_LAND_LUA)

    def land(self, landings: Sequence[Landing]) -> list[Repair]:
        """Record where each landing sits, in order, in one atomic call; the races it found."""
        if not landings:
            return []
        flat = []
        add = flat.extend
        for landing in landings:
            add((landing.state_key, landing.rank, landing.partition, landing.offset))
        reply = self._land(args=[msgpack.packb(flat, use_bin_type=False)])
        return [Repair(landings[reply[i] - 1], reply[i + 1], reply[i + 2], reply[i + 3])
                for i in range(0, len(reply), 4)]


class Repairer:
    """Reads a held version's copy back from a region's topic and appends it again; clients made on first use."""

    def __init__(self, region: Region) -> None:
        self.region = region
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None

    def repair(self, repairs: Sequence[Repair]) -> list[Landing]:
        """Append each repair's copy again; the landings of the new copies (a copy already gone is skipped)."""
        done: set[tuple[str, int, int]] = set()
        written: list[Landing] = []
        for repair in repairs:
            where = (repair.landing.topic, repair.partition, repair.offset)
            if where in done:
                continue
            done.add(where)
            copy = self._read(*where)
            if copy is None or copy.key() != repair.landing.key:
                log.warning("region %s: the winner of a key in %s[%d] is no longer at offset %d (compacted?); "
                            "its last record stays a losing version", self.region.name, *where)
                continue
            self._writer().produce(copy.topic(), value=copy.value(), key=copy.key(), headers=copy.headers(),
                                   partition=copy.partition(), timestamp=copy.timestamp()[1],
                                   on_delivery=partial(self._copied, repair.landing.state_key, repair.rank, written))
            log.info("region %s: %s[%d]: a key's last record ranked below its held version; re-appending the "
                     "winner from offset %d", self.region.name, *where)
        if self._producer is not None:
            self._producer.flush(READ_TIMEOUT_S * 3)
        return written

    def _copied(self, state_key: bytes, rank: bytes, written: list[Landing], err: KafkaError | None, msg) -> None:
        """A copy's delivery report: its landing, to be landed like any record."""
        if err is None:
            written.append(landing_of(state_key, rank, msg))
        else:
            log.warning("region %s: re-appending the winner of a key in %s[%d] failed: %s", self.region.name,
                        msg.topic(), msg.partition(), err)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
        if self._producer is not None:
            self._producer.flush(READ_TIMEOUT_S)
        self._consumer = self._producer = None

    def _read(self, topic: str, partition: int, offset: int):
        consumer = self._reader()
        consumer.assign([TopicPartition(topic, partition, offset)])
        try:
            for msg in consumer.consume(1, timeout=READ_TIMEOUT_S):
                if msg.error() is None and msg.offset() == offset:
                    return msg
            return None
        finally:
            consumer.unassign()

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer({**self.region.kafka_config(), "group.id": f"amity-repair-{uuid.uuid4().hex}",
                                       "enable.auto.commit": False, "isolation.level": "read_committed"})
        return self._consumer

    def _writer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer({**self.region.kafka_config(), "enable.idempotence": True, "acks": "all"})
        return self._producer


class Tails:
    """Lands a writer's acknowledged records in one region and repairs the races the landings find."""

    def __init__(self, region: Region, client: redis.Redis | None = None) -> None:
        self.region = region
        self.state = TailState(client or redis.Redis.from_url(region.redis))
        self.repairer = Repairer(region)
        self.repaired = 0

    def land(self, landings: Sequence[Landing]) -> int:
        """Land `landings`; re-append winners where a race left a losing tail. How many copies were appended."""
        appended = 0
        for _ in range(MAX_ROUNDS):
            repairs = self.state.land(landings)
            if not repairs:
                break
            landings = self.repairer.repair(repairs)
            appended += len(landings)
        else:
            self.state.land(landings)
        self.repaired += appended
        return appended

    def close(self) -> None:
        self.repairer.close()


def landing_of(state_key: bytes, rank: bytes, msg) -> Landing:
    """The landing of an acknowledged record (a confluent_kafka delivery report's message).

    One per record a writer lands: built with tuple.__new__, without Landing's generated __new__ and its frame.
    """
    return _new(Landing, (state_key, rank, msg.key(), msg.topic(), msg.partition(), msg.offset()))
