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

A race needs two writers of one partition: one writer's records land in the
order it decided them. So writers register, before they write, the partitions
they write (a lease of LEASE_MS in a hash per topic, `*` for a writer that
may write any partition, as `amity.Producer` does), and a landing reads the
registrations of its partitions once the records were acknowledged: with no
other writer registered, the records cannot have raced and nothing is sent
(no landing script at all: the common case, one mirror worker per
partition; a link whose partitions are revoked ends its registrations once its records are
landed, so the next owner is alone too). A writer that registers after that read writes after these
records were acknowledged, so its records land after them; one registered
before is seen by this writer and sees it too, and both land in full. A repair's copies are written by another producer:
the repair registers as a writer of its own first. A wipe of the Redis takes
the registrations with it while writers' records may still be in flight: after
the rebuild that follows, every landing counts for a lease.
"""

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import msgpack
import redis
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from amity.regions import Region
from amity.state import SCHEMA, StateSettings

log = logging.getLogger(__name__)

_new = tuple.__new__
MAX_ROUNDS = 3  # a repair's copy lands like any record; more rounds mean writers keep racing on the key
READ_TIMEOUT_S = 10.0
# A writer's registration outlives its last write by this much: longer than a record takes from its decision to
# its landing (delivery timeouts, a landing queue), so a writer that stopped still counts while its records land.
LEASE_MS = 300_000
RENEW_AFTER_S = 60.0  # a writer renews its registration of a partition this long after the last one
ANY_PARTITION = -1  # registered as `*`: the writer may write every partition of the topic


# An acknowledged record of a resolved topic as a writer keeps it: (state hash, rank, the delivery report's message).
# Its Landing is read from the report (`landing_of`) only when another writer may have raced it (Tails.may_have_raced).
Report = tuple[bytes, bytes, object]


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


_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# ARGV[1] registry prefix, ARGV[2] writer, ARGV[3] lease ms, then topic, partition ('*': any) pairs. Registrations
# that ran out are deleted here, so writers that stopped without ending theirs do not pile up.
_REGISTER_LUA = _NOW_MS + """
for g = 4, #ARGV, 2 do
  local registry = ARGV[1] .. ARGV[g]
  local all = redis.call('HGETALL', registry)
  for k = 1, #all, 2 do
    if tonumber(all[k + 1]) <= now then redis.call('HDEL', registry, all[k]) end
  end
  local keep = 2 * tonumber(ARGV[3])
  redis.call('HSET', registry, ARGV[g + 1] .. '|' .. ARGV[2], now + tonumber(ARGV[3]))
  if redis.call('PTTL', registry) < keep then redis.call('PEXPIRE', registry, keep) end  -- never shortened
end
return 1
"""

# ARGV[1] registry prefix, ARGV[2] writer, ARGV[3] the after-rebuild marker, then topics. Returns {1} while the
# marker is set (every landing counts), else {0, topic, partition ('*': any), ...}: where another writer than
# ARGV[2] is registered.
_OTHERS_LUA = _NOW_MS + """
if redis.call('EXISTS', ARGV[3]) == 1 then return {1} end
local out = {0}
for t = 4, #ARGV do
  local all = redis.call('HGETALL', ARGV[1] .. ARGV[t])
  for k = 1, #all, 2 do
    local bar = string.find(all[k], '|', 1, true)
    if tonumber(all[k + 1]) > now and string.sub(all[k], bar + 1) ~= ARGV[2] then
      out[#out + 1] = ARGV[t]
      out[#out + 1] = string.sub(all[k], 1, bar - 1)
    end
  end
end
return out
"""

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
    """The registration and landing scripts over one region's Redis."""

    def __init__(self, client: redis.Redis, settings: StateSettings | None = None) -> None:
        namespace = (settings or StateSettings()).namespace
        self.prefix = f"{namespace}:{SCHEMA}:w:"
        self.rebuilt_marker = f"{namespace}:{SCHEMA}:rebuilt"
        self._register = client.register_script(_REGISTER_LUA)
        self._others = client.register_script(_OTHERS_LUA)
        self._land = client.register_script(_LAND_LUA)
        self._client = client
        self.touched = 0  # landings recorded, of every call so far (those left out are not)

    def register(self, writer: str, partitions: Iterable[tuple[str, int]], lease_ms: int = LEASE_MS) -> None:
        """Register `writer` as a writer of each (topic, partition) for `lease_ms` (ANY_PARTITION: all of them)."""
        args: list[str | int] = [self.prefix, writer, lease_ms]
        for topic, partition in partitions:
            args += (topic, "*" if partition == ANY_PARTITION else partition)
        if len(args) > 3:
            self._register(args=args)

    def deregister(self, writer: str, partitions: Iterable[tuple[str, int]]) -> None:
        """End `writer`'s registrations (it wrote its last record and landed it): the partitions' other writers
        need not wait for the leases to run out."""
        pipeline = self._client.pipeline(transaction=False)
        for topic, partition in partitions:
            pipeline.hdel(self.prefix + topic, f"{'*' if partition == ANY_PARTITION else partition}|{writer}")
        pipeline.execute()

    def mark_rebuilt(self) -> None:
        """Every landing counts for a lease from now: a rebuild follows a wipe, which took the registrations of
        writers whose records may still be landing."""
        self._client.set(self.rebuilt_marker, 1, px=LEASE_MS)

    def shared(self, writer: str, topics: set[str]) -> set[tuple[str, int]] | None:
        """(topic, partition or ANY_PARTITION) pairs another writer than `writer` is registered on; None when
        every landing counts (after a rebuild)."""
        reply = self._others(args=[self.prefix, writer, self.rebuilt_marker, *topics])
        if reply[0] == 1:
            return None
        return {(topic.decode(), ANY_PARTITION if partition == b"*" else int(partition))
                for topic, partition in zip(reply[1::2], reply[2::2])}

    def land(self, landings: Sequence[Landing], writer: str = "") -> list[Repair]:
        """Record where each landing sits, in order, in one atomic call; the races it found.

        With a `writer`, the landings of a partition no other writer is registered on are left out: no record
        can have raced them. The registrations are read once the landings were acknowledged, which is all the
        argument of the module docstring needs, so the landing script itself knows nothing of them. Without a
        writer every landing counts (a rebuild's, which reads the log whole).
        """
        if writer and landings:
            shared = self.shared(writer, {landing.topic for landing in landings})
            if shared is not None:
                landings = [landing for landing in landings if (landing.topic, landing.partition) in shared
                            or (landing.topic, ANY_PARTITION) in shared] if shared else []
        if not landings:
            return []
        self.touched += len(landings)
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
    """Lands one writer's acknowledged records in one region and repairs the races the landings find.

    `full`: land every record, registered or not (a rebuild, which is the region's only writer while it runs and
    must record every key's tail).
    """

    def __init__(self, region: Region, client: redis.Redis | None = None, settings: StateSettings | None = None,
                 full: bool = False) -> None:
        self.region = region
        self.state = TailState(client or redis.Redis.from_url(region.redis), settings)
        self.repairer = Repairer(region)
        self.repaired = 0
        self.writer = "" if full else uuid.uuid4().hex
        self._renew_at: dict[tuple[str, int], float] = {}

    def register(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Register as a writer of (topic, partition) pairs before writing them; a Redis call only when a
        registration is new or due for renewal."""
        if not self.writer:
            return
        now = time.monotonic()
        due = [tp for tp in set(partitions) if self._renew_at.get(tp, 0.0) <= now]
        if due:
            self.state.register(self.writer, due)
            for tp in due:
                self._renew_at[tp] = now + RENEW_AFTER_S

    def land(self, landings: Sequence[Landing]) -> int:
        """Land `landings`; re-append winners where a race left a losing tail. How many copies were appended."""
        appended, writer = 0, self.writer
        for _ in range(MAX_ROUNDS):
            repairs = self.state.land(landings, writer)
            if not repairs:
                break
            writer = self._repairing(repairs)
            landings = self.repairer.repair(repairs)
            appended += len(landings)
        else:
            self.state.land(landings, writer)
        self.repaired += appended
        return appended

    def may_have_raced(self) -> bool:
        """Whether a record this writer had acknowledged may have raced another writer's: False when no other
        writer is registered on a partition this one registered (every one it wrote). Read after the
        acknowledgements, as `land` reads the registrations, so its landings may be skipped on False.

        The common case, one writer per partition, then costs one registration read per batch of landings and
        nothing per record.
        """
        if not self.writer:
            return True
        mine = list(self._renew_at)  # one C-level copy: the writing thread may register meanwhile
        shared = self.state.shared(self.writer, {topic for topic, _ in mine})
        return shared is None or _overlap(mine, shared)

    def _repairing(self, repairs: Sequence[Repair]) -> str:
        """Register the repair's producer, a writer of its own, on the partitions it appends to; its name."""
        if not self.writer:
            return ""
        writer = f"{self.writer}-repair"
        self.state.register(writer, {(repair.landing.topic, repair.partition) for repair in repairs})
        return writer

    def release(self) -> None:
        """End this writer's registrations now, once its last records written are landed: a partition handed to
        another writer (a rebalance) is that writer's alone at once, not shared until the lease runs out, so its
        landings need no script. The next write registers again."""
        if self._renew_at:
            try:
                self.state.deregister(self.writer, self._renew_at)
            except redis.RedisError as exc:
                log.info("region %s: could not end the registrations of writer %s (%s): they lapse within %d s",
                         self.region.name, self.writer, exc, LEASE_MS // 1000)
            self._renew_at.clear()

    def close(self) -> None:
        """Close the repairer and end this writer's registrations: call once its last records are landed."""
        self.repairer.close()
        self.release()


def _overlap(mine: list[tuple[str, int]], shared: set[tuple[str, int]]) -> bool:
    """Whether another writer's registrations (`shared`) meet one of this writer's (`mine`), ANY_PARTITION on either
    side meeting every partition of its topic."""
    shared_topics = {topic for topic, _ in shared}
    for topic, partition in mine:
        if partition == ANY_PARTITION:
            if topic in shared_topics:
                return True
        elif (topic, partition) in shared or (topic, ANY_PARTITION) in shared:
            return True
    return False


def landing_of(state_key: bytes, rank: bytes, msg) -> Landing:
    """The landing of an acknowledged record (a confluent_kafka delivery report's message).

    One per record a writer lands: built with tuple.__new__, without Landing's generated __new__ and its frame.
    """
    return _new(Landing, (state_key, rank, msg.key(), msg.topic(), msg.partition(), msg.offset()))
