"""A region's version state in Redis: what the region holds and has seen, per (topic, key).

Each key's state is one Redis hash:

| field | what |
|---|---|
| `r` | rank bytes of the held version (`policies.rank_bytes`): its hlc, origin and deleted flag are inside |
| `v` | the held version's vector (msgpack map region -> counter) |
| `m` | the merged vector of every version the region has seen or stamped for the key (the causal context); under lww and timestamp, of the versions it stamped |
| `h` | the highest hybrid timestamp seen or stamped for the key, 8 bytes big-endian |

Two Lua scripts touch it, each once per batch and atomically for the whole batch,
and each reads a key's hash once per batch and writes it once, however many of
the batch's records are versions of the key:

- `apply`: compare-and-set of held versions. Ranks arrive precomputed from
  Python, so the script knows no policy; it compares rank bytes byte by byte
  (Lua's `<` on strings follows the server's collation locale, redis/redis#11059)
  and, for the vector policy only, checks whether two vectors are concurrent.
  Under policies that read vectors (vector, region-priority), every claim,
  winning or not, is merged into the context; under lww and timestamp no
  decision reads a vector, so claims leave the context alone (a third of the
  script's work) and a region's context counts only the writes it stamped.
- `stamp`: a new version for a local write: hlc above both a floor (the write's
  time) and the context's, vector the context incremented at the region; the
  context advances to it. With a memo, the first stamp of a source record
  (topic, partition, offset) is stored and returned to every later caller.
  With a hold, a fresh stamp is also decided as `apply` would, against the
  held version, its rank completed from a template (`policies.RankTemplate`).
  Stamped vectors are packed canonically (regions sorted, as `pack_vector`
  does), so a caller can put them into a header without decoding them.

A third script serves topics whose rule stamps first hops from the record's
timestamp (`rules.FirstHop.TIMESTAMP`): `first-hops` touches no key's state. The
stamp is a function of the record, (timestamp ms, 0) and vector {region: 1},
so every link, view and rebuild computes it alike; what links must agree on is
which records they refuse (a clock too far ahead), and that depends on when each
looks. So per memo hash and batch the script raises the hash's `hi` mark to
the batch's last offset, memoises the batch's refusals above the mark, and
returns the memos below it: a record some link passed before was decided
then, refused if memoised so, else stamped by the formula. The stamp script
takes a record below the mark with no memo the same way, so links that
disagree on the rule for a while (a change on its way) still stamp alike.

An epoch marker, written when the state is first opened, detects a wiped or
replaced Redis: every script checks it and the caller raises `StateLost`.
"""

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from hashlib import blake2b
from typing import NamedTuple

import msgpack
import redis
from pydantic import BaseModel, ConfigDict, Field

from amity.errors import AmityError
from amity.packing import packb
from amity.policies import ORIGIN_BYTES, RankTemplate, Version
from amity.rules import ConflictRule, Fallback, Policy
from amity.vectors import MAX_COUNTER, Vector

SCHEMA = "v1"
REBUILDING = "rebuilding"  # the epoch marker's value while a rebuild runs
MEMO_BUCKET = 4096  # source offsets per memo hash: one Redis key per bucket, not per record
_HLC = struct.Struct(">Q")
_TAIL = 8 + ORIGIN_BYTES + 1  # hlc, origin, deleted: the end of every rank layout
_NOT_HELD = (0, "", "", 0)  # a stamp request's hold fields when the stamp does not become the held version
_REFUSING = (-1, "", "", 0)  # a stamp request's hold fields when it asks to memoise a refusal instead

APPLY, STALE, DUPLICATE, CONFLICT_APPLIED, CONFLICT_STALE, OTHER_LAYOUT = "ASDCXL"
# What the apply script reads of a claim's key besides the held rank and the highest hlc (Claim.reads).
RANKS_ONLY, CONTEXT, CONCURRENCY = 0, 1, 2  # lww and timestamp; region-priority; vector


class StateError(AmityError):
    """The version state cannot be used."""


class StateLost(StateError):
    """The region's version state is gone or was replaced since this process first saw it.

    Resolving against it would accept stale versions as new. Stop resolving,
    rebuild the state from the region's topics (`amity.rebuild.rebuild`), then resume.
    """

    def __init__(self, namespace: str, expected: str, found: str | None) -> None:
        self.expected = expected
        self.found = found
        what = {None: "is missing", REBUILDING: "says a rebuild is running"}.get(found, f"changed to {found}")
        super().__init__(
            f"version state epoch of namespace {namespace!r} {what} (expected {expected}): the Redis was "
            "flushed, restarted without persistence or replaced. Resolution stops here; rebuild the state "
            "from the region's topics, then resume"
        )


class Engine(StrEnum):
    """What runs the state's three operations in Redis."""

    AUTO = "auto"  # the amitystate module's commands where the Redis has it loaded, else the Lua scripts
    LUA = "lua"  # the Lua scripts: any Redis, managed services included
    MODULE = "module"  # the module's commands (amity.native): refuse a Redis without it


MODULE_NAME, MODULE_VERSION = "amitystate", 1  # as amity/native/amity_state.c registers itself


class StateSettings(BaseModel):
    """Where the state lives in Redis and how long what may expire is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(default="amity", pattern=r"^[A-Za-z0-9._-]{1,64}$",
                           description="Prefix of every key; separate namespaces never see each other")
    tombstone_ttl_ms: int = Field(
        default=7 * 24 * 3600 * 1000, gt=0,
        description="How long a held tombstone's state is kept: at least the largest delete.retention.ms of "
                    "the topic in any region + the longest replication lag + max_skew_ms")
    stamp_ttl_ms: int = Field(
        default=24 * 3600 * 1000, gt=0,
        description="How long first-hop stamps are remembered: longer than any link out of the region lags")
    max_raw_key_bytes: int = Field(default=128, ge=0, description="Longer record keys are stored as a hash")
    engine: Engine = Field(default=Engine.AUTO,
                           description="auto: the amitystate Redis module where loaded (the same operations in "
                                       "compiled code), else the Lua scripts; lua or module to insist on one")


@dataclass(frozen=True, slots=True)
class Claim:
    """One version offered to the `apply` script for one key."""

    key: bytes  # the state hash (state_key)
    rank: bytes
    hlc: int
    vector: Vector
    ttl_ms: int  # > 0: an applied tombstone whose state may expire after this long; 0: never expires
    reads: int  # what the script reads besides ranks: RANKS_ONLY, CONTEXT or CONCURRENCY (`reads_of`)


class Claims:
    """Claims column by column, as the apply script reads them: no object per claim on the mirror's hot path.

    `add` takes the vector already packed (`pack_vector`) and the hlc as its 8
    big-endian bytes, the forms a stamp arrives in.
    """

    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: list[bytes | int | bool] = []  # six per claim, flat, the state hash first

    @classmethod
    def of(cls, claims: Sequence[Claim]) -> "Claims":
        columns = cls()
        for c in claims:
            columns.add(c.key, c.rank, _HLC.pack(c.hlc), pack_vector(c.vector), c.ttl_ms, c.reads)
        return columns

    def add(self, key: bytes, rank: bytes, hlc: bytes, vector: bytes, ttl_ms: int, reads: int) -> None:
        self.fields.extend((key, rank, hlc, ttl_ms, reads, vector))

    def __len__(self) -> int:
        return len(self.fields) // 6


@dataclass(frozen=True, slots=True)
class Applied:
    """The `apply` script's answer: one code per claim, and the held version each conflict was decided against."""

    codes: str  # APPLY, STALE, DUPLICATE, CONFLICT_APPLIED, CONFLICT_STALE or OTHER_LAYOUT per claim
    # claim index -> (held rank bytes, held vector packed as `pack_vector` packs it), conflicts only: left packed,
    # since a conflict's record carries it packed (amity.resolver.Held)
    held: dict[int, tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Hold:
    """How a fresh stamp becomes the key's held version in the stamp's own script call.

    For a write that is already in the region's topic (a plain client's record
    at its first hop): stamping and holding it in one call saves a round trip
    and leaves no moment where the stamp is seen but not held.
    """

    rank: RankTemplate
    ttl_ms: int  # as Claim.ttl_ms


class StampRequest(NamedTuple):
    """A local write to stamp: its state hash, its time, and (first hop) where the record sits in the source.

    One per record on the mirror's path: a named tuple is cheaper to build than a frozen dataclass.
    """

    key: bytes
    floor_hlc: int  # the stamp is at least this
    memo: tuple[str, int, int] | None = None  # (topic, partition, offset): one stamp per source record
    hold: Hold | None = None  # a fresh stamp becomes the held version (decided as `apply` would); None: it does not


class StampRequests:
    """Stamp requests column by column, as the stamp script reads them: no StampRequest per record on the mirror's
    hot path, and no second pass to flatten them."""

    __slots__ = ("fields", "buckets")

    def __init__(self) -> None:
        self.fields: list[bytes | str | int] = []  # eight per request, flat, the state hash first
        self.buckets: dict[tuple[str, int, int], int] = {}  # (topic, partition, bucket) -> its KEYS slot after the epoch

    @classmethod
    def of(cls, requests: Sequence[StampRequest]) -> "StampRequests":
        columns = cls()
        for request in requests:
            columns.add(*request)
        return columns

    def refuse(self, key: bytes, memo: tuple[str, int, int]) -> None:
        """Ask to memoise that the source record at `memo` is refused at its first hop, unless a stamp was memoised
        for it first (then that stamp is the answer): every link out of the region then decides it alike."""
        self.add(key, 0, memo)
        self.fields[-4:] = _REFUSING

    def add(self, key: bytes, floor_hlc: int, memo: tuple[str, int, int] | None = None,
            hold: Hold | None = None) -> None:
        """One request, its arguments as StampRequest's fields."""
        if memo is None:
            self.fields.extend((key, _HLC.pack(floor_hlc), -1, 0))
        else:
            topic, partition, offset = memo
            buckets = self.buckets
            slot = buckets.setdefault((topic, partition, offset // MEMO_BUCKET), len(buckets) + 1)
            self.fields.extend((key, _HLC.pack(floor_hlc), offset, slot))
        self.fields.extend(_NOT_HELD if hold is None else (hold.rank.kind, hold.rank.head, hold.rank.tail,
                                                            hold.ttl_ms))

    def __len__(self) -> int:
        return len(self.fields) // 8


class FirstHops:
    """A batch's first hops stamped from their timestamps, per memo hash: the first and last offset the link passes
    in it and the offsets it refuses (the `first-hops` script's arguments)."""

    __slots__ = ("hashes",)

    def __init__(self) -> None:
        self.hashes: dict[tuple[str, int, int], list] = {}  # (topic, partition, bucket) -> [first, last, refused]

    def add(self, topic: str, partition: int, offset: int, refused: bool = False) -> None:
        """Pass one source record."""
        bucket = (topic, partition, offset // MEMO_BUCKET)
        passed = self.hashes.get(bucket)
        if passed is None:
            passed = self.hashes[bucket] = [offset, offset, []]
        elif offset > passed[1]:
            passed[1] = offset
        elif offset < passed[0]:
            passed[0] = offset
        if refused:
            passed[2].append(offset)

    def __len__(self) -> int:
        return len(self.hashes)


@dataclass(frozen=True, slots=True)
class Passed:
    """What links before this one decided of a memo hash's records: those at or below `mark` were passed then,
    refused where `decided` says '' and otherwise stamped as `decided` says or, without a memo, by the formula."""

    mark: int
    decided: dict[int, bytes]  # offset -> memo: a stamp (hlc8 + packed vector) or b"" for a refusal


@dataclass(frozen=True, slots=True)
class Refused:
    """The memo of a source record its first hop refused (its clock too far ahead): no stamp, for any link."""


REFUSED = Refused()


@dataclass(frozen=True, slots=True)
class Stamp:
    hlc: int
    vector: Vector
    fresh: bool  # False: an earlier caller stamped this source record, and this is its stamp


@dataclass(frozen=True, slots=True)
class Stamps:
    """The stamp script's answer column by column: request i got hlcs[i], vectors[i] and fresh[i]; an empty hlc
    and vector where the source record is refused (`StampRequests.refuse`, by this request or an earlier one)."""

    hlcs: list[bytes]  # 8 bytes, big-endian
    vectors: list[bytes]  # packed canonically: the bytes `pack_vector` gives, ready for a header
    fresh: list[int]  # 0: an earlier caller stamped this source record, and this is its stamp


_COMMON = """
local byte, sunpack = string.byte, struct.unpack
-- Six bytes at a time read as one number (exact below 2^53): two C calls where a byte loop makes twelve.
local function number6(s, i)
  local b1, b2, b3, b4, b5, b6 = byte(s, i, i + 5)
  return ((((b1 * 256 + (b2 or 0)) * 256 + (b3 or 0)) * 256 + (b4 or 0)) * 256 + (b5 or 0)) * 256 + (b6 or 0)
end
-- a > b, bytewise, for strings of one length. Two versions of a key nearly always differ in their first six
-- bytes (an hlc's milliseconds), read by struct in one call each: half the time of number6 there.
local function gt(a, b)
  if a == b then return false end
  local from = 1
  if #a >= 6 and #b >= 6 then
    local x, y = sunpack('>I6', a), sunpack('>I6', b)
    if x ~= y then return x > y end
    from = 7
  end
  for i = from, #a, 6 do
    local x, y = number6(a, i), number6(b, i)
    if x ~= y then return x > y end
  end
  return false
end
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local function unpack_vector(packed)
  if not packed then return {} end
  return cmsgpack.unpack(packed)
end
-- One and two regions, nearly every vector, are packed without building a table of the regions.
local function pack_vector(vector)
  local a, x = next(vector)
  if a == nil then return '\\128' end
  local b, y = next(vector, a)
  if b == nil then return '\\129' .. cmsgpack.pack(a, x) end
  if next(vector, b) == nil then
    if before(b, a) then a, b, x, y = b, a, y, x end
    return '\\130' .. cmsgpack.pack(a, x, b, y)
  end
  local regions = {}
  for region in pairs(vector) do regions[#regions + 1] = region end
  local n = #regions
  table.sort(regions, before)
  local pairs_in_order = {}
  for i, region in ipairs(regions) do
    pairs_in_order[2 * i - 1] = region
    pairs_in_order[2 * i] = vector[region]
  end
  local header = n < 16 and string.char(128 + n) or string.char(222, math.floor(n / 256), n % 256)
  return header .. cmsgpack.pack(unpack(pairs_in_order))
end
local function check_epoch()
  if ARGV[1] == '' then return nil end
  local current = redis.call('GET', KEYS[1])
  if current ~= ARGV[1] then return {1, current or ''} end
  return nil
end
-- A key's state is read at its first claim of a batch and written once after its last: the versions of a key that
-- recur in a batch (a hot key, a partition's run of updates) share one HMGET and one HSET. Between its claims a
-- key's state waits in a small array; a key claimed once is decided in locals alone, so a batch of distinct keys
-- costs two table operations per claim more than deciding each claim on its own.
local function claims_per_key(fields, width)
  local left = {}
  for i = 1, #fields, width do
    local key = fields[i]
    left[key] = (left[key] or 0) + 1
  end
  return left
end
-- Counts the key's claim down in `left`; true for its last claim of the batch.
local function last_claim(left, key)
  local n = left[key] - 1
  left[key] = n
  return n == 0
end
-- The expiry of a key whose held version a batch replaced: `ttl` for a tombstone, none once a write replaced a
-- tombstone (`first`, the rank held before the batch).
local function expire_as_held(key, ttl, first)
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  elseif first and string.byte(first, #first) == 1 then
    redis.call('PERSIST', key)
  end
end
"""

# KEYS[1] epoch marker. ARGV[1] expected epoch ('' skips the check: rebuild only), ARGV[2] msgpack array of the
# claims' fields, flat: state hash, rank, hlc8, ttl_ms, reads (RANKS_ONLY 0, CONTEXT 1, CONCURRENCY 2),
# msgpack-packed vector (six per claim).
# The state hashes travel in the array, not as KEYS: redis-py prepares each KEYS entry apart, at twice the cost
# (and the hashes of one batch span every cluster slot: the state is for a standalone Redis either way).
# Returns {1, current epoch} on a lost epoch, else {0, codes, i, held rank, held vector, ...} (conflicts).
_APPLY_LUA = _COMMON + """
local function concurrent(a, b)
  local less, greater = false, false
  for region, x in pairs(a) do
    local y = b[region] or 0
    if x < y then less = true elseif x > y then greater = true end
  end
  for region, y in pairs(b) do
    if a[region] == nil and y > 0 then less = true end
  end
  return less and greater
end
local lost = check_epoch()
if lost then return lost end
local fields = cmsgpack.unpack(ARGV[2])
local codes, out = {}, {0, ''}
local left, waiting = claims_per_key(fields, 6), {}
-- `ttl` is false until a claim is applied; `first`, `seen_merged` and `seen_top` are the fields as read.
local function write_state(key, keeps, held, merged, top, held_vector, ttl, first, seen_merged, seen_top)
  if ttl then  -- a claim was applied: the last one applied is held
    if keeps then
      redis.call('HSET', key, 'r', held, 'v', held_vector, 'm', merged or held_vector, 'h', top)
    else
      redis.call('HSET', key, 'r', held, 'v', held_vector, 'h', top)
    end
    expire_as_held(key, ttl, first)
  elseif keeps and (merged ~= seen_merged or top ~= seen_top) then
    redis.call('HSET', key, 'm', merged, 'h', top)
  elseif top ~= seen_top then
    redis.call('HSET', key, 'h', top)
  end
end
for i = 1, #fields / 6 do
  local j = 6 * (i - 1)
  local key, rank, hlc, ttl, reads, packed = fields[j + 1], fields[j + 2], fields[j + 3], fields[j + 4],
    fields[j + 5], fields[j + 6]
  -- lww and timestamp (0) read no vector and leave the context alone; only the vector policy (2) compares with the
  -- held vector
  local keeps, classify = reads ~= 0, reads == 2
  local held, merged, top, held_vector, applied, first, seen_merged, seen_top
  local s = waiting[key]
  if s then
    held, merged, top, held_vector, applied, first, seen_merged, seen_top = unpack(s, 1, 8)
  else
    local state
    if not keeps then
      state = redis.call('HMGET', key, 'r', 'h')
      held, top = state[1], state[2]
    elseif classify then
      state = redis.call('HMGET', key, 'r', 'm', 'h', 'v')
      held, merged, top, held_vector = state[1], state[2], state[3], state[4]
    else
      state = redis.call('HMGET', key, 'r', 'm', 'h')
      held, merged, top = state[1], state[2], state[3]
    end
    applied, first, seen_merged, seen_top = false, held, merged, top
  end
  local vector, held_table
  local code
  if not held then
    code = 'A'
  elseif #held ~= #rank then
    code = 'L'
  elseif held == rank then
    code = 'D'
  else
    local wins = gt(rank, held)
    if classify and packed ~= held_vector then  -- equal vectors are not concurrent
      vector, held_table = unpack_vector(packed), unpack_vector(held_vector)
    end
    if held_table and concurrent(vector, held_table) then
      code = wins and 'C' or 'X'
      out[#out + 1] = i
      out[#out + 1] = held
      out[#out + 1] = held_vector or '\\128'  -- an empty msgpack map, as pack_vector packs no vector
    else
      code = wins and 'A' or 'S'
    end
  end
  codes[i] = code
  if code ~= 'L' then
    if keeps and merged ~= packed then
      vector = vector or unpack_vector(packed)
      -- the context is most often the held version's vector, unpacked already (and read no more)
      local context = held_table and merged == held_vector and held_table or unpack_vector(merged)
      local grew, covered = false, true
      for region, counter in pairs(vector) do
        local known = context[region] or 0
        if known < counter then context[region] = counter; grew = true end
      end
      if grew then
        for region, counter in pairs(context) do
          if (vector[region] or 0) < counter then covered = false; break end
        end
        merged = covered and packed or cmsgpack.pack(context)
      end
    end
    if not top or gt(hlc, top) then top = hlc end
    if code == 'A' or code == 'C' then held, held_vector, applied = rank, packed, ttl end
  end
  if last_claim(left, key) then
    write_state(key, keeps, held, merged, top, held_vector, applied, first, seen_merged, seen_top)
  elseif s then  -- `first` and the fields as read stay as they are
    s[1], s[2], s[3], s[4], s[5] = held, merged, top, held_vector, applied
  else
    waiting[key] = {held, merged, top, held_vector, applied, first, seen_merged, seen_top}
  end
end
out[2] = table.concat(codes)
return out
"""

# A memo hash: each batch writes its memos (a stamp, '' for a refusal) as one field, 'c' .. its first offset, a
# msgpack array offset, memo, offset, memo...; the field 'hi' is the highest offset a link has passed in the hash.
_MEMOS = """
local function mark_of(memo)
  return tonumber(redis.call('HGET', memo, 'hi')) or -1
end
-- offset -> memo of every record memoised in the hash, read whole.
local function memos_of(memo)
  local memos, all = {}, redis.call('HGETALL', memo)
  for k = 1, #all, 2 do
    if byte(all[k], 1) == 99 then  -- 'c'
      local chunk = cmsgpack.unpack(all[k + 1])
      for e = 1, #chunk, 2 do memos[chunk[e]] = chunk[e + 1] end
    end
  end
  return memos
end
-- A batch's memos (offset, memo, ...; possibly none) and the hash's new mark, kept `ttl` ms from now.
local function write_memo(memo, entries, mark, ttl)
  if #entries > 0 then
    redis.call('HSET', memo, 'c' .. entries[1], cmsgpack.pack(entries), 'hi', mark)
  else
    redis.call('HSET', memo, 'hi', mark)
  end
  redis.call('PEXPIRE', memo, ttl)
end
"""

# KEYS[1] epoch marker, KEYS[1 + j] memo hash j.
# ARGV[1] expected epoch, ARGV[2] region, ARGV[3] memo ttl ms, ARGV[4] msgpack array of the requests' fields,
# flat, eight per request: state hash (in the array, as for apply), floor hlc8, source offset (-1 for none), memo
# hash slot j, hold (0: none, -1: memoise a refusal instead of stamping, else `policies.Head`), rank head, rank
# tail, ttl ms.
# Returns {1, current epoch} or {0, hlc8, canonically packed vector, fresh, ...}.
# A counter stops at MAX_COUNTER: a forged header that put the region's counter for a key there would otherwise make
# every later stamp of the key one its header cannot carry. Stamps that saturate are ordered by their clocks.
_STAMP_LUA = _COMMON + _MEMOS + f"local MAX_COUNTER = {MAX_COUNTER}\n" + """
local function successor(hlc)
  local last = byte(hlc, 8)
  if last < 255 then return string.sub(hlc, 1, 7) .. string.char(last + 1) end
  local bytes = {byte(hlc, 1, 8)}
  for i = 8, 1, -1 do
    if bytes[i] < 255 then
      bytes[i] = bytes[i] + 1
      return string.char(unpack(bytes))
    end
    bytes[i] = 0
  end
  error('hybrid timestamp overflow')
end
local function big_endian8(n)
  local bytes = {}
  for i = 8, 1, -1 do
    bytes[i] = n % 256
    n = math.floor(n / 256)
  end
  return string.char(unpack(bytes))
end
local function depth(vector)
  local sum = 0
  for _, counter in pairs(vector) do sum = sum + counter end
  return sum
end
local function canonical(packed)
  local first = string.byte(packed, 1)
  if first == 128 or first == 129 then return packed end
  return pack_vector(cmsgpack.unpack(packed))
end
local function rank_of(hold, head, hlc, tail, vector)
  if hold == 2 then head = string.char(0, 0) .. string.sub(hlc, 1, 6) end
  if hold == 3 then head = big_endian8(depth(vector)) .. head end
  return head .. hlc .. tail
end
-- The memos of the batch: slot -> offset -> stamp. A link ahead of every other (offsets all above the marks) reads
-- nothing; otherwise the whole memo hash is read once.
local function read_memos(fields, n)
  local marks, behind = {}, {}
  for i = 1, n do
    local offset = fields[8 * i - 5]
    if offset >= 0 then
      local slot = fields[8 * i - 4]
      if not marks[slot] then marks[slot] = mark_of(KEYS[1 + slot]) end
      if offset <= marks[slot] then behind[slot] = true end
    end
  end
  local memos = {}
  for slot in pairs(marks) do memos[slot] = behind[slot] and memos_of(KEYS[1 + slot]) or {} end
  return memos, marks
end
local function memo(memos, written, marks, slot, offset, stamp)
  memos[slot][offset] = stamp
  local entries = written[slot]
  if not entries then entries = {}; written[slot] = entries end
  entries[#entries + 1] = offset
  entries[#entries + 1] = stamp
  if offset > marks[slot] then marks[slot] = offset end
end
local function write_memos(written, marks, ttl)
  for slot, entries in pairs(written) do write_memo(KEYS[1 + slot], entries, marks[slot], ttl) end
end
local lost = check_epoch()
if lost then return lost end
local region, memo_ttl = ARGV[2], tonumber(ARGV[3])
local fields = cmsgpack.unpack(ARGV[4])
local n = #fields / 8
local memos, marks = read_memos(fields, n)
local left, waiting = claims_per_key(fields, 8), {}
-- `ttl` is false until a stamp became the held version; `first` is the rank held before the batch.
local function write_state(key, merged, top, held, held_vector, ttl, first)
  if ttl then  -- a stamp became the held version: the last one that did is held
    redis.call('HSET', key, 'r', held, 'v', held_vector, 'm', merged, 'h', top)
    expire_as_held(key, ttl, first)
  else
    redis.call('HSET', key, 'm', merged, 'h', top)
  end
end
local passed = {}  -- the marks before this batch: a record at or below one was decided by the link that passed it
for slot, mark in pairs(marks) do passed[slot] = mark end
local out, written = {0}, {}
for i = 1, n do
  local j = 8 * (i - 1)
  local key, hlc, field, slot, hold = fields[j + 1], fields[j + 2], fields[j + 3], fields[j + 4], fields[j + 5]
  local last = last_claim(left, key)
  local s = waiting[key]  -- the state an earlier stamp of the batch left, its context unpacked: see below
  local known = field >= 0 and memos[slot][field]
  if known == '' then  -- a refusal
    out[3 * i - 1], out[3 * i], out[3 * i + 1] = '', '', 0
  elseif known then
    out[3 * i - 1] = string.sub(known, 1, 8)
    out[3 * i] = canonical(string.sub(known, 9))
    out[3 * i + 1] = 0
  elseif field >= 0 and field <= passed[slot] then  -- passed unmemoised: stamped from its timestamp (first-hops)
    out[3 * i - 1] = hlc
    out[3 * i] = pack_vector({[region] = 1})
    out[3 * i + 1] = 0
  elseif hold < 0 then
    memo(memos, written, marks, slot, field, '')
    out[3 * i - 1], out[3 * i], out[3 * i + 1] = '', '', 1
  else
    local merged, top, held, held_vector, ttl, first, context
    if s then
      merged, top, held, held_vector, ttl, first, context = unpack(s, 1, 7)
    else
      local state = redis.call('HMGET', key, 'm', 'h', 'r')
      merged, top, held, ttl, first = state[1], state[2], state[3], false, state[3]
      context = unpack_vector(merged)
    end
    if top and not gt(hlc, top) then hlc = successor(top) end
    context[region] = math.min((context[region] or 0) + 1, MAX_COUNTER)
    local vector = pack_vector(context)
    local rank = hold > 0 and rank_of(hold, fields[j + 6], hlc, fields[j + 7], context)
    if rank and (not held or (#held == #rank and gt(rank, held))) then
      held, held_vector, ttl = rank, vector, fields[j + 8]
    end
    if last then
      write_state(key, vector, hlc, held, held_vector, ttl, first)
      s = nil  -- written: nothing left for the end of the turn
    elseif s then  -- `first` stays, and `context` is the array's own table, changed in place
      s[1], s[2], s[3], s[4], s[5] = vector, hlc, held, held_vector, ttl
    else
      waiting[key] = {vector, hlc, held, held_vector, ttl, first, context}
    end
    if field >= 0 then memo(memos, written, marks, slot, field, hlc .. vector) end
    out[3 * i - 1] = hlc
    out[3 * i] = vector
    out[3 * i + 1] = 1
  end
  if last and s then write_state(key, unpack(s, 1, 6)) end  -- the key's last request took no stamp of its own
end
write_memos(written, marks, memo_ttl)
return out
"""

# KEYS[1] epoch marker, KEYS[1 + j] memo hash j.
# ARGV[1] expected epoch, ARGV[2] memo ttl ms, ARGV[3] msgpack array, per memo hash j: the first and last offset the
# batch passes in it and the array of offsets the link refuses.
# Returns {1, current epoch} or {0, mark 1, memos 1, ...}: per memo hash its `hi` mark before the batch (-1: none)
# and, flat, offset and memo (a stamp, '' a refusal) of each record of the batch at or below that mark.
_FIRST_HOPS_LUA = _COMMON + _MEMOS + """
local lost = check_epoch()
if lost then return lost end
local memo_ttl = tonumber(ARGV[2])
local hashes = cmsgpack.unpack(ARGV[3])
local out = {0}
for j = 1, #hashes / 3 do
  local memo, first, last, refused = KEYS[1 + j], hashes[3 * j - 2], hashes[3 * j - 1], hashes[3 * j]
  local mark = mark_of(memo)
  local decided = {}
  if first <= mark then
    for offset, memoised in pairs(memos_of(memo)) do
      if offset >= first and offset <= last then
        decided[#decided + 1] = offset
        decided[#decided + 1] = memoised
      end
    end
  end
  local entries = {}
  for _, offset in ipairs(refused) do
    if offset > mark then
      entries[#entries + 1] = offset
      entries[#entries + 1] = ''
    end
  end
  if last > mark then write_memo(memo, entries, last, memo_ttl) end
  out[2 * j] = mark
  out[2 * j + 1] = decided
end
return out
"""


class VersionState:
    """One region's version state in one Redis, under one namespace.

    Remembers the epoch it first saw (or was told to expect, for callers that
    persist it across restarts) and fails closed with `StateLost` when the
    Redis no longer carries it.
    """

    def __init__(self, client: redis.Redis, settings: StateSettings | None = None,
                 expected_epoch: str | None = None) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise StateError("the Redis client decodes responses; version state is binary: "
                             "create it without decode_responses=True")
        self.client = client
        self.settings = settings or StateSettings()
        self.epoch = expected_epoch
        prefix = f"{self.settings.namespace}:{SCHEMA}"
        self._prefix = prefix.encode()
        self._topic_prefixes: dict[str, bytes] = {}
        self.epoch_key = f"{prefix}:epoch".encode()
        self._operations = Operations(client, self.settings.engine)

    @classmethod
    def connect(cls, url: str, settings: StateSettings | None = None) -> "VersionState":
        return cls(redis.Redis.from_url(url), settings)

    def open(self) -> str:
        """The epoch to hold the state to: the expected one if still there, else a new one on an empty state.

        A process that has not seen the state before (and was given no
        expected epoch) creates the marker when it is missing, so the first
        start on a fresh Redis works; a restart on a wiped Redis is only caught
        when the caller persists the epoch and passes it back.
        """
        if self.epoch is None:
            self._check_eviction()
            self.client.set(self.epoch_key, uuid.uuid4().hex, nx=True)
        current = self._current_epoch()
        if self.epoch is not None and current != self.epoch:
            raise StateLost(self.settings.namespace, self.epoch, current)
        self.epoch = current
        return current

    @property
    def engine(self) -> Engine | None:
        """The engine that ran the last operation (module or Lua); None before the first."""
        return self._operations.running

    def adopt(self) -> str:
        """Hold to the epoch now in Redis (after a rebuild finished); StateLost while there is none."""
        self.epoch = self._current_epoch()
        return self.epoch

    def _current_epoch(self) -> str:
        found = self.client.get(self.epoch_key)
        current = found.decode() if found is not None else None
        if current is None or current == REBUILDING:
            raise StateLost(self.settings.namespace, self.epoch or "(none)", current)
        return current

    def state_key(self, topic: str, key: bytes) -> bytes:
        """The hash holding `key`'s state in `topic`; keys longer than max_raw_key_bytes are hashed."""
        prefix = self._topic_prefixes.get(topic)
        if prefix is None:
            prefix = self._topic_prefixes[topic] = b"%s:s:%s:" % (self._prefix, topic.encode())
        if len(key) <= self.settings.max_raw_key_bytes:
            return prefix + b"=" + key
        return prefix + b"#" + blake2b(key, digest_size=20).digest()

    def topic_pattern(self, topic: str) -> bytes:
        """A SCAN pattern for every state hash of `topic`."""
        return b"%s:s:%s:*" % (self._prefix, topic.encode())

    def memo_key(self, topic: str, partition: int, offset: int) -> bytes:
        """The hash remembering the stamp of source record (topic, partition, offset), among 4095 others."""
        return self._memo_bucket(topic, partition, offset // MEMO_BUCKET)

    def _memo_bucket(self, topic: str, partition: int, bucket: int) -> bytes:
        return b"%s:m:%s:%d:%d" % (self._prefix, topic.encode(), partition, bucket)

    def apply(self, claims: Sequence[Claim] | Claims) -> Applied:
        """Decide every claim against the held version, in order, in one atomic script call."""
        return self._run_apply(claims, self._required_epoch()) if claims else Applied("", {})

    def load(self, claims: Sequence[Claim] | Claims) -> Applied:
        """`apply` without the epoch check: only for a rebuild, which writes the epoch when it is done."""
        return self._run_apply(claims, "") if claims else Applied("", {})

    def stamp(self, requests: Sequence[StampRequest] | StampRequests, region: str) -> list[Stamp | Refused]:
        """Stamp local writes in `region`, in order, in one atomic script call; REFUSED for a source record
        memoised as refused."""
        stamps = self.stamp_batch(requests, region)
        return [Stamp(_HLC.unpack(hlc)[0], unpack_vector(vector), bool(fresh)) if hlc else REFUSED
                for hlc, vector, fresh in zip(stamps.hlcs, stamps.vectors, stamps.fresh)]

    def stamp_batch(self, requests: Sequence[StampRequest] | StampRequests, region: str) -> Stamps:
        """`stamp`, answered column by column with the stamps as the script gives them (no decoding)."""
        if not requests:
            return Stamps([], [], [])
        columns = requests if isinstance(requests, StampRequests) else StampRequests.of(requests)
        keys = [self.epoch_key, *(self._memo_bucket(*b) for b in columns.buckets)]
        reply = self._operations.stamp(keys, [self._required_epoch(), region, self.settings.stamp_ttl_ms,
                                              _pack(columns.fields)])
        self._check_reply(reply)
        return Stamps(reply[1::3], reply[2::3], reply[3::3])

    def pass_first_hops(self, hops: FirstHops) -> dict[tuple[str, int, int], Passed]:
        """Pass a batch's first hops stamped from their timestamps: memoise its refusals, learn what links before
        it decided; one atomic script call, no key's state touched."""
        if not hops:
            return {}
        buckets = list(hops.hashes)
        reply = self._operations.first_hops([self.epoch_key, *(self._memo_bucket(*b) for b in buckets)],
                                            [self._required_epoch(), self.settings.stamp_ttl_ms,
                                             _pack([field for passed in hops.hashes.values() for field in passed])])
        self._check_reply(reply)
        return {bucket: Passed(mark, dict(zip(decided[::2], decided[1::2])))
                for bucket, mark, decided in zip(buckets, reply[1::2], reply[2::2])}

    def memoised(self, topic: str, coordinates: Sequence[tuple[int, int]]) -> list[Stamp | Refused | None]:
        """The first-hop stamps remembered for source records (partition, offset) of `topic` (REFUSED for one
        refused at its first hop); one round trip, each memo hash read whole."""
        memos = [self.memo_key(topic, partition, offset) for partition, offset in coordinates]
        hashes = list(dict.fromkeys(memos))
        pipeline = self.client.pipeline(transaction=False)
        for memo in hashes:
            pipeline.hgetall(memo)
        stamps = {memo: _memo_stamps(fields) for memo, fields in zip(hashes, pipeline.execute())}
        found = [stamps[memo].get(offset) for memo, (_, offset) in zip(memos, coordinates)]
        return [None if raw is None else REFUSED if not raw else
                Stamp(_HLC.unpack_from(raw)[0], unpack_vector(raw[8:]), False) for raw in found]

    def begin_rebuild(self) -> None:
        """Mark the state as rebuilding: every resolver and stamper of it fails closed until `finish_rebuild`,
        and none starting meanwhile takes the half-built state for a fresh one."""
        self.client.set(self.epoch_key, REBUILDING)

    def finish_rebuild(self) -> str:
        """Write a new epoch once the rebuilt state is complete, and hold to it."""
        self.epoch = uuid.uuid4().hex
        self.client.set(self.epoch_key, self.epoch)
        return self.epoch

    def read(self, topic: str, key: bytes) -> dict[bytes, bytes]:
        """The raw state hash of one key (for inspection and tests)."""
        return self.client.hgetall(self.state_key(topic, key))

    def _run_apply(self, claims: Sequence[Claim] | Claims, epoch: str) -> Applied:
        columns = claims if isinstance(claims, Claims) else Claims.of(claims)
        reply = self._operations.apply([self.epoch_key], [epoch, _pack(columns.fields)])
        self._check_reply(reply)
        held = {reply[i] - 1: (reply[i + 1], reply[i + 2]) for i in range(2, len(reply), 3)}
        return Applied(reply[1].decode(), held)

    def _required_epoch(self) -> str:
        return self.epoch if self.epoch is not None else self.open()

    def _check_reply(self, reply: list) -> None:
        if reply[0] == 1:
            found = reply[1].decode() or None
            raise StateLost(self.settings.namespace, self.epoch or "(none)", found)

    def _check_eviction(self) -> None:
        """Refuse a Redis that may evict keys: an evicted tombstone or held version lets stale writes back in."""
        try:
            config = self.client.config_get("maxmemory*")
        except redis.ResponseError:
            return  # CONFIG is disabled on some managed services; the operator has to check it there
        policy = config.get(b"maxmemory-policy", b"noeviction")
        if int(config.get(b"maxmemory", 0)) > 0 and policy != b"noeviction":
            raise StateError(f"Redis maxmemory-policy is {policy.decode()} with a memory limit: it may evict "
                             "version state, and a forgotten version lets stale writes back in. "
                             "Set maxmemory-policy noeviction")


class Operations:
    """The state's three operations, one Redis call each: the amitystate module's commands or the Lua scripts.

    Both take the same keys and arguments and give the same replies, so nothing
    above this class knows which ran. The choice is made at the first call, not
    when the state is built (its Redis may be down then), and made again when the
    module's commands vanish: a Redis replaced by one without the module.
    """

    COMMANDS = ("AMITY.APPLY", "AMITY.STAMP", "AMITY.FIRSTHOPS")

    def __init__(self, client: redis.Redis, engine: Engine) -> None:
        self.client = client
        self.engine = engine
        self._scripts = tuple(client.register_script(source) for source in (_APPLY_LUA, _STAMP_LUA, _FIRST_HOPS_LUA))
        self.running: Engine | None = None  # MODULE or LUA once the first call decided

    def apply(self, keys: list[bytes], args: list) -> list:
        return self._run(0, keys, args)

    def stamp(self, keys: list[bytes], args: list) -> list:
        return self._run(1, keys, args)

    def first_hops(self, keys: list[bytes], args: list) -> list:
        return self._run(2, keys, args)

    def _run(self, operation: int, keys: list[bytes], args: list) -> list:
        if self.running is None:
            self.running = self._choose()
        if self.running is Engine.LUA:
            return self._scripts[operation](keys=keys, args=args)
        try:
            return self.client.execute_command(self.COMMANDS[operation], len(keys), *keys, *args)
        except redis.ResponseError as exc:
            if not str(exc).lower().startswith("unknown command"):
                raise
            self.running = self._choose()
            if self.running is Engine.MODULE:
                raise
            return self._scripts[operation](keys=keys, args=args)

    def _choose(self) -> Engine:
        """MODULE where the setting allows it and the Redis has the module at this version, else LUA (or, under
        `module`, a StateError)."""
        if self.engine is Engine.LUA:
            return Engine.LUA
        loaded = module_version(self.client)
        if loaded == MODULE_VERSION:
            return Engine.MODULE
        if self.engine is Engine.MODULE:
            found = "not loaded" if loaded is None else f"at version {loaded}, this Amity needs {MODULE_VERSION}"
            raise StateError(f"the state engine is `module` but the Redis module {MODULE_NAME} is {found}: start "
                             f"redis-server with --loadmodule <amity_state.so> (`amity dev install` builds it), or "
                             f"set the engine to auto or lua")
        return Engine.LUA


def module_version(client: redis.Redis) -> int | None:
    """The version of the amitystate module loaded in the Redis, None when it is not (or MODULE is not allowed)."""
    try:
        modules = client.module_list()
    except redis.ResponseError:
        return None
    for module in modules:
        fields = {_text(name): value for name, value in module.items()}
        if _text(fields.get("name", b"")) == MODULE_NAME:
            return int(fields.get("ver", 0))
    return None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def pack_vector(vector: Vector) -> bytes:
    """A vector as the scripts store it: a msgpack map, in the vector's (sorted) order.

    The same bytes as the vector in a provenance header (str8 for 32-character
    names, which cmsgpack reads and writes too), and as the stamp script packs it.
    """
    return packb(dict(vector))


def _memo_stamps(fields: dict[bytes, bytes]) -> dict[int, bytes]:
    """offset -> stamp (hlc8 + packed vector) from a memo hash's chunks (fields 'c' + first offset)."""
    stamps: dict[int, bytes] = {}
    for name, chunk in fields.items():
        if name.startswith(b"c"):
            entries = msgpack.unpackb(chunk, raw=True)
            stamps.update(zip(entries[::2], entries[1::2]))
    return stamps


def _pack(value: object) -> bytes:
    """msgpack without the bin type, which Redis's cmsgpack cannot read: bytes go as raw strings."""
    return msgpack.packb(value, use_bin_type=False)


def unpack_vector(packed: bytes | None) -> Vector:
    """A vector as the scripts store it (msgpack map; an empty one packs as an empty array)."""
    decoded = msgpack.unpackb(packed, raw=False) if packed else None
    return tuple(sorted(decoded.items())) if decoded else ()


def rank_stamp(rank: bytes) -> tuple[int, str, bool]:
    """The hlc, origin and deleted flag in `rank`, whatever its layout: every layout ends with them."""
    hlc = _HLC.unpack_from(rank, len(rank) - _TAIL)[0]
    origin = rank[len(rank) - ORIGIN_BYTES - 1:-1].rstrip(b"\0").decode("ascii")
    return hlc, origin, rank[-1] == 1


def held_version(rule: ConflictRule, rank: bytes, vector: Vector) -> Version:
    """The version whose `rank_bytes` under `rule` are `rank`."""
    hlc, origin, deleted = rank_stamp(rank)
    field = _HLC.unpack_from(rank)[0] if rule.policy is Policy.TIMESTAMP and not deleted else None
    return Version(hlc, origin, vector, deleted, field)


def reads_of(rule: ConflictRule) -> int:
    """What the apply script reads for a claim under `rule`: vectors only where a decision reads them."""
    if rule.policy is Policy.VECTOR:
        return CONCURRENCY
    return CONTEXT if rule.policy is Policy.REGION_PRIORITY else RANKS_ONLY


def may_expire(rule: ConflictRule) -> bool:
    """Whether a held tombstone's state may expire under `rule`.

    Not under ranks that start with depth (region-priority, and vector with
    that fallback): a region that forgot a key's context stamps its next write
    at depth 1, below the tombstone other regions still hold, and the regions
    would disagree for good. Clock-ranked policies stamp past an expired
    tombstone by the clock alone.
    """
    if rule.policy is Policy.REGION_PRIORITY:
        return False
    return not (rule.policy is Policy.VECTOR and rule.effective_fallback is Fallback.REGION_PRIORITY)
