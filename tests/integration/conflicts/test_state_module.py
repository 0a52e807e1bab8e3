"""The amitystate Redis module (shared/native/amity_state.c) against the Lua scripts it stands in for.

The test starts two redis-servers of its own, on free loopback ports: one plain, where the scripts run exactly as
`amity.state.VersionState` calls them, and one with the module loaded, where the same keys and arguments go to
AMITY.APPLY, AMITY.STAMP and AMITY.FIRSTHOPS. Hypothesis drives both through one random sequence of batches built by
amity.state's own classes (`Claims`, `StampRequests`, `FirstHops`, through `VersionState.apply/load`,
`stamp_batch` and `pass_first_hops`): a small pool of keys and memo offsets, so that keys repeat within and across
batches and memos fall below and above the marks. After every batch the replies must be equal, value for value and
type for type (integer, bulk string, array: what a RESP reply carries), or both an error; and both servers must hold
the same keys with the same contents (one exception, the order of a first-hops reply's memos:
see `Twin`): the `m` field and memo chunks compared decoded (the module packs a merged
context with its regions sorted, the script in Lua's table order) and also, for memo chunks, byte for byte;
everything else byte for byte, and whether each key has a ttl.

The module is built as `amity dev` builds it (amity.dev.native: warnings are errors), into the test's own directory.
"""

import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from amity import state as state_module
from amity.clock import pack
from amity.dev.native import build, compiler
from amity.policies import Head, RankTemplate, rank_tail
from amity.state import (
    _APPLY_LUA, _FIRST_HOPS_LUA, _STAMP_LUA, Claims, Engine, FirstHops, Hold, Operations, StampRequests, StateLost,
    StateSettings, VersionState, _pack,
)
from amity.vectors import MAX_COUNTER
from tests.support.mirror import free_port

EPOCH = "0123456789abcdef0123456789abcdef"
TOPIC = "t"
NAMES = [b"k0", b"k1", b"k2", b"k3"]
REGIONS = ["ap", "eu", "us", "region-named-with-32-characters-"]  # the last packs as str8 (cmsgpack) / raw16
BASE = pack(1_700_000_000_000, 0)

STATS: Counter = Counter()  # what the sequences exercised, checked by test_the_sequences_reached_every_path


# -- the two servers --------------------------------------------------------------------------------------------------

# AMITY_STATE_MODULE_SANITIZE=address: the module built with AddressSanitizer (each allocation its own malloc), run in
# a redis-server with the sanitizer's runtime preloaded; a report in its log fails the tests' teardown.
SANITIZE = os.environ.get("AMITY_STATE_MODULE_SANITIZE") == "address"
SANITIZE_FLAGS = ["-fsanitize=address", "-fno-omit-frame-pointer", "-g", "-O1", "-DAMITY_DEBUG_ALLOC"]


class Server:
    def __init__(self, directory: Path, port: int, module: Path | None) -> None:
        command = ["redis-server", "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1",
                   "--dir", str(directory)]
        if module is not None:
            command += ["--loadmodule", str(module)]
        self.log = open(directory / f"redis-{port}.log", "wb")
        environment = None
        if module is not None and SANITIZE:
            runtime = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout
            environment = {**os.environ, "LD_PRELOAD": runtime.strip(), "ASAN_OPTIONS": "detect_leaks=0"}
        self.path = directory / f"redis-{port}.log"
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=environment)
        self.client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server on port {port} did not start: {directory}") from None
                time.sleep(0.05)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()


class Events:
    """The keyspace events (event, key) a server publishes for database 0, read up to a marker written in database 1."""

    def __init__(self, server: Server) -> None:
        server.client.config_set("notify-keyspace-events", "EA")
        port = server.client.connection_pool.connection_kwargs["port"]
        self.marker = redis.Redis(port=port, db=1)
        self.pubsub = server.client.pubsub()
        self.pubsub.psubscribe("__keyevent@0__:*", "__keyevent@1__:set")
        self.read()

    def read(self) -> Counter:
        self.marker.set(b"marker", b"")
        events: Counter = Counter()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=1.0)
            if message is None or message["type"] != "pmessage":
                continue
            if message["channel"] == b"__keyevent@1__:set":
                return events
            events[message["channel"].split(b":", 1)[1], message["data"]] += 1
        raise AssertionError("the marker's keyspace event never came")

    def close(self) -> None:
        self.pubsub.close()
        self.marker.close()


class Pair:
    """The plain server (scripts) and the module's server, reset to one epoch and nothing else."""

    def __init__(self, lua: Server, native: Server) -> None:
        self.lua, self.native = lua, native
        self.events = Events(lua), Events(native)

    @property
    def clients(self) -> tuple[redis.Redis, redis.Redis]:
        return self.lua.client, self.native.client

    def reset(self) -> None:
        for client in self.clients:
            client.flushall()
            client.set(b"amity:v1:epoch", EPOCH)

    def state(self, **settings: object) -> VersionState:
        """A VersionState on the plain server whose three scripts also run as module commands on the other."""
        version_state = VersionState(self.lua.client, StateSettings(engine=Engine.LUA, **settings),
                                     expected_epoch=EPOCH)
        version_state._operations._scripts = (Twin(self, _APPLY_LUA, Operations.COMMANDS[0]),
                                              Twin(self, _STAMP_LUA, Operations.COMMANDS[1]),
                                              Twin(self, _FIRST_HOPS_LUA, Operations.COMMANDS[2]))
        return version_state

    def assert_same_state(self) -> None:
        lua, native = snapshot(self.lua.client), snapshot(self.native.client)
        assert lua.keys() == native.keys(), f"keys differ: script {sorted(lua)} module {sorted(native)}"
        for key in lua:
            assert lua[key] == native[key], f"{key!r}: script {lua[key]!r} module {native[key]!r}"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    if shutil.which("redis-server") is None or compiler() is None:
        pytest.skip("needs redis-server and a C compiler")
    directory = tmp_path_factory.mktemp("state-module")
    module = build(directory / "amity_state.so", SANITIZE_FLAGS if SANITIZE else ())
    servers = [Server(directory, free_port(), None)]
    try:
        servers.append(Server(directory, free_port(), module))
        pair = Pair(*servers)
        yield pair
        for events in pair.events:
            events.close()
    finally:
        for server in servers:
            server.stop()
    native = servers[1]
    log = native.path.read_text(errors="replace")
    assert "AddressSanitizer" not in log and "crashed by signal" not in log, f"the module's server reported:\n{log}"


# -- running both and comparing ---------------------------------------------------------------------------------------

def _outcome(run):
    try:
        return run()
    except redis.ResponseError as error:
        return error


def assert_same_reply(lua: object, native: object, where: str = "reply") -> None:
    if isinstance(lua, redis.ResponseError) or isinstance(native, redis.ResponseError):
        assert isinstance(lua, redis.ResponseError) and isinstance(native, redis.ResponseError), (
            f"{where}: script {lua!r}, module {native!r}")
        return
    assert type(lua) is type(native), f"{where}: script {lua!r}, module {native!r}"
    if isinstance(lua, list):
        assert len(lua) == len(native), f"{where}: script {lua!r}, module {native!r}"
        for i, (a, b) in enumerate(zip(lua, native)):
            assert_same_reply(a, b, f"{where}[{i}]")
    else:
        assert lua == native, f"{where}: script {lua!r}, module {native!r}"


def _memos_in_offset_order(reply: object) -> object:
    """A first-hops reply with each hash's memos (offset, memo, offset, memo, ...) sorted by offset."""
    if isinstance(reply, redis.ResponseError) or reply[0] != 0:
        return reply
    return [0, *(x if i % 2 == 0 else [v for pair in sorted(zip(x[::2], x[1::2])) for v in pair]
                 for i, x in enumerate(reply[1:]))]


class Twin:
    """Stands in for one of VersionState's registered scripts: runs the script on the plain server and the module
    command with the same keys and arguments on the other, checks the replies agree, and answers as the script.

    One exception to replies agreeing byte for byte: the order of a first-hops reply's memos. The script lists them
    as `pairs` visits its Lua table, which follows the server's random hash seed where the memo hash is in hashtable
    encoding (two plain servers can list them differently); the module lists them in offset order. So the module's
    reply must equal, byte for byte, the script's with each hash's memos sorted by offset."""

    def __init__(self, pair: Pair, source: str, command: str) -> None:
        self.script = pair.lua.client.register_script(source)
        self.native = pair.native.client
        self.events = pair.events
        self.command = command

    def __call__(self, keys=(), args=(), client=None):
        for events in self.events:
            events.read()  # what came before the call
        lua = _outcome(lambda: self.script(keys=keys, args=args))
        native = _outcome(lambda: self.native.execute_command(self.command, len(keys), *keys, *args))
        if self.command == "AMITY.FIRSTHOPS":
            assert_same_reply(_memos_in_offset_order(lua), native, self.command)
        else:
            assert_same_reply(lua, native, self.command)
        # the same keyspace events (hset, expire, persist, del), in any order: the stamp script writes its memo hashes
        # in the order `pairs` visits its slots
        lua_events, native_events = (events.read() for events in self.events)
        assert lua_events == native_events, f"{self.command} events: script {lua_events}, module {native_events}"
        for (event, _), count in lua_events.items():
            STATS[f"event {event.decode()}"] += count
        count_reply(self.command, lua)
        if isinstance(lua, redis.ResponseError):
            raise lua
        return lua


def count_reply(command: str, reply: object) -> None:
    if isinstance(reply, redis.ResponseError):
        STATS[f"{command} error"] += 1
        return
    if reply[0] == 1:
        STATS[f"{command} epoch lost"] += 1
        return
    if command == "AMITY.APPLY":
        for code in reply[1].decode():
            STATS[f"apply {code}"] += 1
    elif command == "AMITY.STAMP":
        for hlc, vector, fresh in zip(reply[1::3], reply[2::3], reply[3::3]):
            kind = ("refused" if not hlc else "stamped") + (" fresh" if fresh else " memoised")
            STATS[f"stamp {kind}"] += 1
    else:
        for decided in reply[2::2]:
            STATS["first-hops decided"] += len(decided) // 2
            STATS["first-hops decided 4+"] += len(decided) >= 8
            STATS["first-hops decided 8+"] += len(decided) >= 16


def snapshot(client: redis.Redis) -> dict[bytes, tuple]:
    """Every key: its type and encoding, its contents (hash fields, `m` and memo chunks decoded too) and whether it
    has a ttl."""
    found = {}
    for key in client.keys("*"):
        kind = (client.type(key), client.object("encoding", key))
        has_ttl = client.pttl(key) >= 0
        if kind[0] == b"hash":
            fields = {}
            for field, value in client.hgetall(key).items():
                if field == b"m":
                    value = msgpack.unpackb(value, raw=True, strict_map_key=False)
                elif b":m:" in key and field.startswith(b"c"):
                    value = (msgpack.unpackb(value, raw=True), value)
                fields[field] = value
            found[key] = (kind, fields, has_ttl)
            if has_ttl:
                STATS["keys with a ttl"] += 1
        else:
            found[key] = (kind, client.get(key) if kind[0] == b"string" else None, has_ttl)
    return found


# -- what the sequences are made of ---------------------------------------------------------------------------------

# Carries into earlier bytes; floors going backwards; the last hlc (stamping past it fails).
_SPECIAL_HLCS = [BASE | 0xFFFF, (BASE | 0xFFFF) - 1, BASE - 1, 1, BASE | 0xFFFF, BASE - 1, 1, (1 << 64) - 1]
HLCS = st.one_of(st.integers(BASE, BASE + 6), st.integers(BASE, BASE + 6), st.integers(BASE, BASE + 6),
                 st.sampled_from(_SPECIAL_HLCS))
COUNTERS = st.one_of(st.integers(1, 4), st.integers(MAX_COUNTER - 2, MAX_COUNTER), st.just(0))
VECTORS = st.dictionaries(st.sampled_from(REGIONS), COUNTERS, max_size=4)
TTLS = st.sampled_from([0, 0, 60_000, 3_600_000])
# offsets of three memo hashes per partition: bucket 0 (small integers: a Lua table's array part), bucket 1, and one
# past 1e14 (a field name 'c' .. offset in Lua's "%.14g" has an exponent there)
RANGES = [(0, 40), (4096, 4130), (123456789012340, 123456789012370)]


@st.composite
def memo_sources(draw) -> st.SearchStrategy:
    """Where one sequence's source records sit: one to three memo hashes per partition, one or two partitions, so that
    a sequence's memos gather in a few hashes and later batches read many of them back."""
    ranges = draw(st.lists(st.sampled_from(RANGES), min_size=1, max_size=3, unique=True))
    partitions = draw(st.sampled_from([[0], [0, 1]]))
    return st.tuples(st.just(TOPIC), st.sampled_from(partitions), st.one_of(*(st.integers(a, b) for a, b in ranges)))


@st.composite
def ranks(draw) -> bytes:
    """Rank bytes of the three layouts' lengths: ties and near-ties in the first six bytes and past them."""
    length = draw(st.sampled_from([41, 41, 41, 49, 51]))  # mostly one length: more decisions than 'L's
    middle = bytearray(length - 7)
    if draw(st.booleans()):
        middle[draw(st.integers(0, len(middle) - 1))] = draw(st.integers(1, 2))
    prefix = draw(st.sampled_from([0, 1, 2, 3, (1 << 48) - 2, (1 << 48) - 1]))  # the high ones beat stamped ranks
    return prefix.to_bytes(6, "big") + bytes(middle) + bytes([draw(st.integers(0, 1))])


@st.composite
def packed_vectors(draw) -> bytes:
    vector = draw(VECTORS)
    if draw(st.booleans()):
        vector = dict(sorted(vector.items(), key=lambda item: (item[0].encode(), len(item[0]))))  # pack_vector's
    return msgpack.packb(vector)


@st.composite
def holds(draw) -> Hold | None:
    kind = draw(st.sampled_from([None, Head.GIVEN, Head.GIVEN, Head.STAMP_MS, Head.DEPTH]))
    if kind is None:
        return None
    head = {Head.GIVEN: draw(st.sampled_from([b"", draw(st.integers(0, 3)).to_bytes(8, "big")])),
            Head.STAMP_MS: b"", Head.DEPTH: draw(st.integers(0, 2)).to_bytes(2, "big")}[kind]
    tail = rank_tail(draw(st.sampled_from(REGIONS[:3])), draw(st.booleans()))
    return Hold(RankTemplate(kind, head, tail), draw(TTLS))


def key_of(version_state: VersionState, data: st.DataObject) -> bytes:
    return version_state.state_key(TOPIC, data.draw(st.sampled_from(NAMES)))


def apply_batch(version_state: VersionState, data: st.DataObject, pool: list[bytes]) -> None:
    claims = Claims()
    reads = data.draw(st.sampled_from([0, 1, 2, 2, None]))  # None: every claim its own; 2 (vector) finds conflicts
    for _ in range(data.draw(st.integers(1, 10))):
        claims.add(key_of(version_state, data), data.draw(st.sampled_from(pool)),
                   state_module._HLC.pack(data.draw(HLCS)), data.draw(packed_vectors()), data.draw(TTLS),
                   reads if reads is not None else data.draw(st.sampled_from([0, 1, 2])))
    if data.draw(st.booleans()):
        version_state.apply(claims)
    else:
        version_state.load(claims)  # no epoch check: ARGV[1] ''


def stamp_batch(version_state: VersionState, data: st.DataObject, memos: st.SearchStrategy) -> None:
    requests = StampRequests()
    for _ in range(data.draw(st.integers(1, 12))):
        key = key_of(version_state, data)
        memo = data.draw(st.one_of(st.none(), memos))
        if memo is not None and data.draw(st.integers(0, 4)) == 0:
            requests.refuse(key, memo)
        else:
            requests.add(key, data.draw(HLCS), memo, data.draw(holds()))
    version_state.stamp_batch(requests, data.draw(st.sampled_from(REGIONS)))


def first_hops_batch(version_state: VersionState, data: st.DataObject, memos: st.SearchStrategy) -> None:
    hops = FirstHops()
    for _ in range(data.draw(st.integers(1, 20))):
        _, partition, offset = data.draw(memos)
        hops.add(TOPIC, partition, offset, data.draw(st.booleans()))
    version_state.pass_first_hops(hops)


EXAMPLES = settings(max_examples=300, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


# -- the tests --------------------------------------------------------------------------------------------------------

@EXAMPLES
@given(data=st.data())
def test_same_replies_and_state_over_random_batches(pair: Pair, data: st.DataObject) -> None:
    pair.reset()
    version_state = pair.state(stamp_ttl_ms=data.draw(st.sampled_from([3_600_000, 86_400_000])))
    pool = data.draw(st.lists(ranks(), min_size=1, max_size=10))
    memos = data.draw(memo_sources())
    for _ in range(data.draw(st.integers(1, 8))):
        batch = data.draw(st.sampled_from([apply_batch, apply_batch, stamp_batch, stamp_batch, first_hops_batch]))
        try:
            if batch is apply_batch:
                apply_batch(version_state, data, pool)
            else:
                batch(version_state, data, memos)
        except redis.ResponseError:
            pass  # both answered an error (Twin checked): what either wrote before it must still agree
        pair.assert_same_state()
    STATS["sequences"] += 1


WIDE_RANGES = [(0, 300), (4096, 4500), (123456789012340, 123456789012740)]


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_first_hops_read_back_many_memos(pair: Pair, data: st.DataObject) -> None:
    """Memo hashes of many memos over several chunks, read whole by first-hops batches: the reply lists them in the
    order the script's Lua table gives (array part, then hash nodes, after rehashes), and the module must too."""
    pair.reset()
    version_state = pair.state()
    low, high = data.draw(st.sampled_from(WIDE_RANGES))
    offsets = st.integers(low, high)
    for _ in range(data.draw(st.integers(1, 6))):
        if data.draw(st.integers(0, 2)):
            requests = StampRequests()
            for _ in range(data.draw(st.integers(1, 40))):
                key = key_of(version_state, data)
                memo = (TOPIC, 0, data.draw(offsets))
                if data.draw(st.integers(0, 5)) == 0:
                    requests.refuse(key, memo)
                else:
                    requests.add(key, data.draw(HLCS), memo)
            try:
                version_state.stamp_batch(requests, data.draw(st.sampled_from(REGIONS)))
            except redis.ResponseError:
                pass
        else:
            hops = FirstHops()
            for _ in range(data.draw(st.integers(1, 30))):
                hops.add(TOPIC, 0, data.draw(offsets), data.draw(st.booleans()))
            version_state.pass_first_hops(hops)
        pair.assert_same_state()
    STATS["many-memo sequences"] += 1


def test_the_sequences_reached_every_path() -> None:
    """The random sequences above are only worth their count if they reach every branch of the scripts."""
    if not STATS["sequences"]:
        pytest.skip("runs after test_same_replies_and_state_over_random_batches")
    if not STATS["many-memo sequences"]:
        pytest.skip("runs after test_first_hops_read_back_many_memos")
    # (apply's errors are rare in random batches: test_script_errors_agree_and_keep_earlier_writes makes them)
    wanted = ["apply A", "apply S", "apply D", "apply C", "apply X", "apply L",
              "stamp stamped fresh", "stamp stamped memoised", "stamp refused fresh", "stamp refused memoised",
              "AMITY.STAMP error", "first-hops decided", "first-hops decided 4+", "first-hops decided 8+",
              "keys with a ttl", "event hset", "event expire", "event persist"]
    missing = [path for path in wanted if not STATS[path]]
    print(f"\nreached: {dict(sorted(STATS.items()))}")
    assert not missing, f"never reached: {missing} (reached: {dict(STATS)})"


def test_epoch_lost_replies(pair: Pair) -> None:
    pair.reset()
    version_state = pair.state()
    key = version_state.state_key(TOPIC, b"k0")
    claims = Claims()
    claims.add(key, bytes(41), state_module._HLC.pack(BASE), b"\x81\xa2eu\x01", 0, 1)
    requests = StampRequests()
    requests.add(key, BASE, (TOPIC, 0, 5))
    hops = FirstHops()
    hops.add(TOPIC, 0, 7, refused=True)
    for found, expected in ((b"another-epoch", "another-epoch"), (None, None)):
        for client in pair.clients:
            if found is None:
                client.delete(b"amity:v1:epoch")
            else:
                client.set(b"amity:v1:epoch", found)
        for run in (lambda: version_state.apply(claims), lambda: version_state.stamp_batch(requests, "eu"),
                    lambda: version_state.pass_first_hops(hops)):
            with pytest.raises(StateLost) as lost:
                run()
            assert lost.value.found == expected
        pair.assert_same_state()
    applied = version_state.load(claims)  # '' skips the check: a rebuild writes without an epoch
    assert applied.codes == "A"
    pair.assert_same_state()


def test_script_errors_agree_and_keep_earlier_writes(pair: Pair) -> None:
    """Where a script fails half way (Redis keeps what it wrote before), the module fails at the same point."""
    pair.reset()
    version_state = pair.state()
    first, second = version_state.state_key(TOPIC, b"k0"), version_state.state_key(TOPIC, b"k1")
    # the last hlc held: a stamp of the second key must go past it and cannot; the first key's stamp is written
    for client in pair.clients:
        client.hset(second, mapping={b"m": b"\x80", b"h": b"\xff" * 8})
    requests = StampRequests()
    requests.add(first, BASE)
    requests.add(second, BASE)
    with pytest.raises(redis.ResponseError):
        version_state.stamp_batch(requests, "eu")
    assert pair.lua.client.hget(first, b"h") == state_module._HLC.pack(BASE)
    pair.assert_same_state()
    # a key holding a string: HMGET fails, after the claims before it were written
    for client in pair.clients:
        client.set(second, b"not a hash")
    claims = Claims()
    claims.add(first, bytes(40) + b"\x01", state_module._HLC.pack(BASE + 9), b"\x81\xa2eu\x02", 5_000, 2)
    claims.add(second, bytes(41), state_module._HLC.pack(BASE), b"\x81\xa2eu\x01", 0, 2)
    with pytest.raises(redis.ResponseError):
        version_state.apply(claims)
    pair.assert_same_state()
    # HSET of a nil context: a key applied under lww (no `m`), then a stale claim under region-priority that
    # raises the highest hlc with an empty vector
    pair.reset()
    claims = Claims()
    claims.add(first, b"\x00\x00\x00\x00\x00\x09" + bytes(35), state_module._HLC.pack(BASE), b"\x81\xa2eu\x01", 0, 0)
    version_state.apply(claims)
    claims = Claims()
    claims.add(first, bytes(41), state_module._HLC.pack(BASE + 5), b"\x80", 0, 1)
    with pytest.raises(redis.ResponseError):
        version_state.apply(claims)
    pair.assert_same_state()


def test_ttls_outside_the_settings_agree(pair: Pair) -> None:
    """Ttls StateSettings never gives (it wants them > 0), straight to the scripts and commands: a memo ttl of 0
    deletes the memo hash (PEXPIRE in the past), one that is no number fails after the hash is written, and so does a
    claim's ttl that is no integer."""
    pair.reset()
    version_state = pair.state()
    memo = version_state.memo_key(TOPIC, 0, 5)
    keys = [b"amity:v1:epoch", memo]
    version_state._operations.first_hops(keys, [EPOCH, 0, _pack([5, 5, [5]])])
    assert not pair.lua.client.exists(memo)
    pair.assert_same_state()
    with pytest.raises(redis.ResponseError):
        version_state._operations.first_hops(keys, [EPOCH, "soon", _pack([6, 6, [6]])])
    assert pair.lua.client.exists(memo)
    pair.assert_same_state()
    claims = Claims()
    claims.add(version_state.state_key(TOPIC, b"k0"), bytes(41), state_module._HLC.pack(BASE), b"\x81\xa2eu\x01",
               1.5, 0)
    with pytest.raises(redis.ResponseError):
        version_state.apply(claims)
    pair.assert_same_state()


def _module_error(pair: Pair, *command: object) -> str:
    client = pair.native.client
    with pytest.raises(redis.ResponseError) as error:
        client.execute_command(*command)
    assert client.ping() is True
    return str(error.value)


def test_malformed_arguments_answer_an_error(pair: Pair) -> None:
    pair.reset()
    client = pair.native.client
    epoch = b"amity:v1:epoch"
    memo = b"amity:v1:m:t:0:0"
    claim = [b"amity:v1:s:t:=k0", bytes(41), bytes(8), 0, 1, b"\x81\xa2eu\x01"]
    request = [b"amity:v1:s:t:=k0", bytes(8), 3, 1, 0, "", "", 0]
    cases = [
        ("AMITY.APPLY",),
        ("AMITY.APPLY", "x", epoch, EPOCH, _pack(claim)),
        ("AMITY.APPLY", "-1", epoch, EPOCH, _pack(claim)),
        ("AMITY.APPLY", 5, epoch, EPOCH, _pack(claim)),
        ("AMITY.APPLY", 1, epoch, EPOCH),
        ("AMITY.APPLY", 1, epoch, EPOCH, b""),
        ("AMITY.APPLY", 1, epoch, EPOCH, b"\xc1"),
        ("AMITY.APPLY", 1, epoch, EPOCH, _pack({"a": 1})),
        ("AMITY.APPLY", 1, epoch, EPOCH, _pack(claim[:5])),
        ("AMITY.APPLY", 1, epoch, EPOCH, _pack(claim)[:-3]),
        ("AMITY.APPLY", 1, epoch, EPOCH, b"\xdd\xff\xff\xff\xff"),
        ("AMITY.APPLY", 1, epoch, EPOCH, _pack([*claim[:3], "0", *claim[4:]])),
        ("AMITY.APPLY", 1, epoch, EPOCH, _pack([*claim[:5], 7])),
        ("AMITY.APPLY", 1, epoch, EPOCH, msgpack.packb([*claim[:5], b"\x81\xa2eu\x01"], use_bin_type=True)),
        ("AMITY.APPLY", 0, "", _pack(claim + [claim[0], bytes(41), bytes(8), 0, 2, b"\x81\x01\x01"])),
        ("AMITY.APPLY", 0, "", _pack(claim + [claim[0], bytes(41), bytes(8), 0, 2, b"\xa3abc"])),
        ("AMITY.APPLY", 0, EPOCH, _pack(claim)),
        ("AMITY.STAMP", 1, epoch, EPOCH, "eu", 1000),
        ("AMITY.STAMP", 1, epoch, EPOCH, "eu", 1000, _pack(request[:7])),
        ("AMITY.STAMP", 1, epoch, EPOCH, "eu", 1000, _pack(request)),  # slot 1 but no memo hash
        ("AMITY.STAMP", 2, epoch, memo, EPOCH, "eu", 1000, _pack([*request[:3], 2, *request[4:]])),
        ("AMITY.STAMP", 2, epoch, memo, EPOCH, "eu", 1000, _pack([*request[:3], 1.5, *request[4:]])),
        ("AMITY.STAMP", 1, epoch, EPOCH, "eu", 1000, _pack([request[0], bytes(8), -1, 0, -1, "", "", 0])),
        ("AMITY.STAMP", 2, epoch, memo, EPOCH, "eu", 1000, _pack([*request[:5], 3, *request[6:]])),
        ("AMITY.FIRSTHOPS", 2, epoch, memo, EPOCH, 1000),
        ("AMITY.FIRSTHOPS", 2, epoch, memo, EPOCH, 1000, _pack([1, 2])),
        ("AMITY.FIRSTHOPS", 2, epoch, memo, EPOCH, 1000, _pack([1, 2, 3])),
        ("AMITY.FIRSTHOPS", 2, epoch, memo, EPOCH, 1000, _pack([1, 2, ["x"]])),
        ("AMITY.FIRSTHOPS", 1, epoch, EPOCH, 1000, _pack([1, 2, []])),
    ]
    for command in cases:
        before = client.dbsize()
        message = _module_error(pair, *command)
        assert message, command
        assert client.dbsize() == before, f"{command} wrote before failing"
    # a memo hash whose chunk is not msgpack, a state hash whose context is not a vector
    client.hset(memo, mapping={b"hi": b"9", b"c3": b"\xc1"})
    _module_error(pair, "AMITY.FIRSTHOPS", 2, epoch, memo, EPOCH, 1000, _pack([1, 2, []]))
    client.hset(b"amity:v1:s:t:=k1", mapping={b"m": b"\x93\x01\x02\x03", b"h": bytes(8)})
    _module_error(pair, "AMITY.STAMP", 1, epoch, EPOCH, "eu", 1000,
                  _pack([b"amity:v1:s:t:=k1", bytes(8), -1, 0, 0, "", "", 0]))
    assert pair.native.alive()
