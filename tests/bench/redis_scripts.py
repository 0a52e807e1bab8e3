"""Redis CPU per record of the three version-state scripts, their floor, and Redis memory per first-hop memo.

What a first-hop record costs the regions' Redis on the mirror's resolver path, one script at a time:
the stamp in the source region (with its memo), the compare-and-set in the destination (apply), and
the landing once the destination acknowledged it (in full, as where two writers share a partition, and
as a writer alone on its partitions lands, touching no key); and, under `first_hop: timestamp`, the
first-hops script that replaces the stamp. Two regions, 10,000 keys, batches of 5,000 records
as a link sends them, their keys drawn at random (about 3,950 distinct keys a batch) or, with
`--keys runs`, a partition's run of the benchmark's data (`k<j>` in partition j mod 6, in order:
about 1,667 keys a batch, each three times), their timestamps rising as a producer writes them; the
destination already holds a version of every key stamped in the other region, as in a running
active-active pair. CPU is read from the Redis process (/proc), so work in
this Python process does not count. The floor is a script that only reads four fields of each key's
state hash and writes them back: what any script touching a key once costs, before its logic.

    python tests/bench/redis_scripts.py [--policy lww|vector] [--keys random|runs] [--engine lua|module]
                                        [--port 21190] [--rounds 5]

`--engine module` runs stamp, apply and first-hops as the amitystate module's commands (amity.state.Engine),
built as `amity dev` builds it; the landing and the floor stay Lua scripts either way.
Starts its own redis-server (no persistence) on the port and stops it by pid.
"""

import argparse
import random
import time

import msgpack
import redis

from amity.bench.meter import CLOCK_TICKS, ProcessMeter
from amity.policies import rank_tail, rank_template
from amity.rules import ConflictRule
from amity.dev.native import ensure_module
from amity.dev.settings import DevSettings
from amity.state import (
    Claims, Engine, FirstHops, Hold, StampRequest, StampRequests, StateSettings, VersionState, reads_of,
)
from amity.tails import Landing, TailState

from scratch_redis import scratch_redis  # tests/bench, beside this script

KEYS, BATCH, BATCHES, PARTITIONS = 10_000, 5_000, 24, 6
WRITTEN_PER_MS = 500  # the sources' rate: about what the benchmark's writer reaches


def ms_written(record: int) -> int:
    """When the `record`th record was written, in ms after the first: the sources write WRITTEN_PER_MS a millisecond."""
    return record // WRITTEN_PER_MS


def written_at(start: int, record: int) -> int:
    """The floor of a record's stamp, its timestamp (`ms_written`) as a hybrid timestamp after `start`.

    Until 2026-12-07 16:10 every floor was the same, so nearly every stamp was its key's last stamp's
    successor, a path the benchmark's data seldom takes, at about 1 µs more per record.
    """
    return start + (ms_written(record) << 16)


def batch_keys(order: str, batch: int, rng: random.Random) -> list[bytes]:
    """The keys of one batch: at random, or the next run of one partition of the benchmark's data."""
    if order == "random":
        return [b"k%d" % rng.randrange(KEYS) for _ in range(BATCH)]
    return run_of_keys(batch)


def run_of_keys(batch: int) -> list[bytes]:
    """Batch `batch` of the benchmark's data read partition by partition: `k<j>` is in partition j mod 6, in order."""
    partition, per_partition = batch % PARTITIONS, KEYS // PARTITIONS
    return [b"k%d" % (partition + PARTITIONS * ((batch * BATCH + i) % per_partition)) for i in range(BATCH)]


def one_round(port: int, rule: ConflictRule, redis_cpu: ProcessMeter, seed: int, order: str,
              settings: StateSettings) -> dict[str, float]:
    """Redis CPU µs per record of each script over BATCHES batches of first-hop records from us into eu."""
    us_client, eu_client = redis.Redis(port=port, db=0), redis.Redis(port=port, db=1)
    us_client.flushdb()
    eu_client.flushdb()
    us, eu = VersionState(us_client, settings), VersionState(eu_client, settings)
    us.open()
    eu.open()
    tails, reads = TailState(eu_client), reads_of(rule)
    now = int(time.time() * 1000) << 16
    _held_everywhere(us, eu, rule, now, reads)
    hold = Hold(rank_template(rule, "us", False), 0)
    tails.register("mirror", [("t", partition) for partition in range(6)])
    spent = {"stamp": 0.0, "apply": 0.0, "land": 0.0, "alone": 0.0, "from-ts": 0.0}
    rng, landed = random.Random(seed), 0
    for batch in range(BATCHES):
        keys = batch_keys(order, batch, rng)
        requests = StampRequests()
        for i, key in enumerate(keys):
            requests.add(us.state_key("t", key), written_at(now, batch * BATCH + i), ("t", i % 6, batch * BATCH + i),
                         hold)
        before = redis_cpu.read().cpu_s
        stamps = us.stamp_batch(requests, "us")
        spent["stamp"] += redis_cpu.read().cpu_s - before
        hops = FirstHops()
        for i in range(BATCH):
            hops.add("t-from-timestamp", i % 6, batch * BATCH + i)
        before = redis_cpu.read().cpu_s
        us.pass_first_hops(hops)
        spent["from-ts"] += redis_cpu.read().cpu_s - before
        claims = Claims()
        tail = rank_tail("us", False)
        for key, hlc, vector in zip(keys, stamps.hlcs, stamps.vectors):
            claims.add(eu.state_key("t", key), hlc + tail, hlc, vector, 0, reads)
        before = redis_cpu.read().cpu_s
        applied = eu.apply(claims)
        spent["apply"] += redis_cpu.read().cpu_s - before
        landings = []
        for i, (key, hlc, code) in enumerate(zip(keys, stamps.hlcs, applied.codes)):
            if code in "ADC":
                landed += 1
                landings.append(Landing(eu.state_key("t", key), hlc + tail, key, "t", i % 6, landed))
        before = redis_cpu.read().cpu_s
        tails.land(landings)
        spent["land"] += redis_cpu.read().cpu_s - before
        before = redis_cpu.read().cpu_s
        tails.land(landings, "mirror")
        spent["alone"] += redis_cpu.read().cpu_s - before
    return {name: 1e6 * cpu / (BATCH * BATCHES) for name, cpu in spent.items()}


def _held_everywhere(us: VersionState, eu: VersionState, rule: ConflictRule, now: int, reads: int) -> None:
    """Every key stamped in eu and applied in us: two-region contexts everywhere, as in a running pair."""
    keys = [b"k%d" % k for k in range(KEYS)]
    hold = Hold(rank_template(rule, "eu", False), 0)
    stamps = eu.stamp_batch([StampRequest(eu.state_key("t", key), now, None, hold) for key in keys], "eu")
    claims = Claims()
    for key, hlc, vector in zip(keys, stamps.hlcs, stamps.vectors):
        claims.add(us.state_key("t", key), hlc + rank_tail("eu", False), hlc, vector, 0, reads)
    us.apply(claims)


_FLOOR_LUA = """
local keys = cmsgpack.unpack(ARGV[1])
for i = 1, #keys do
  local s = redis.call('HMGET', keys[i], 'r', 'v', 'm', 'h')
  redis.call('HSET', keys[i], 'r', s[1], 'v', s[2], 'm', s[3], 'h', s[4])
end
return #keys
"""


def floor_per_key(port: int, redis_cpu: ProcessMeter, seed: int) -> float:
    """Redis CPU µs per key of reading four fields of its state hash and writing them back, in batches."""
    client = redis.Redis(port=port, db=1)  # eu's state as one_round left it
    script, rng = client.register_script(_FLOOR_LUA), random.Random(seed)
    state = VersionState(client)
    spent = 0.0
    for _ in range(BATCHES):
        keys = msgpack.packb([state.state_key("t", b"k%d" % rng.randrange(KEYS)) for _ in range(BATCH)],
                             use_bin_type=False)
        before = redis_cpu.read().cpu_s
        script(args=[keys])
        spent += redis_cpu.read().cpu_s - before
    return 1e6 * spent / (BATCH * BATCHES)


def memo_bytes_per_record(port: int, rule: ConflictRule, settings: StateSettings) -> float:
    client = redis.Redis(port=port, db=2)
    client.flushdb()
    state = VersionState(client, settings)
    state.open()
    hold = Hold(rank_template(rule, "us", False), 0)
    now = int(time.time() * 1000) << 16
    state.stamp_batch([StampRequest(state.state_key("t", b"k%d" % k), now, None, hold) for k in range(KEYS)], "us")
    before, records = client.info("memory")["used_memory"], 40 * BATCH
    for batch in range(records // BATCH):
        state.stamp_batch([StampRequest(state.state_key("t", b"k%d" % (i % KEYS)), now, ("t", 0, batch * BATCH + i),
                                        hold) for i in range(BATCH)], "us")
    return (client.info("memory")["used_memory"] - before) / records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--policy", choices=["lww", "vector"], default="lww")
    parser.add_argument("--keys", choices=["random", "runs"], default="random")
    parser.add_argument("--engine", choices=["lua", "module"], default="lua")
    parser.add_argument("--port", type=int, default=21190)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rule = ConflictRule(topic="t", policy=args.policy)
    settings = StateSettings(engine=Engine(args.engine))
    module = ensure_module(DevSettings().module_path) if settings.engine is Engine.MODULE else None
    with scratch_redis(args.port, module) as server:
        redis_cpu = ProcessMeter(server.pid)
        rounds = [{**one_round(args.port, rule, redis_cpu, seed, args.keys, settings),
                   "floor": floor_per_key(args.port, redis_cpu, seed)} for seed in range(args.rounds)]
        best = {name: min(r[name] for r in rounds) for name in rounds[0]}
        floor = best.pop("floor")
        tick = 1e6 / CLOCK_TICKS / (BATCH * BATCHES)
        print(f"policy {args.policy}, {args.keys} keys, {args.engine}: Redis CPU per first-hop record, best of {args.rounds} "
              f"rounds of {BATCHES} x {BATCH} records (resolution {tick:.2f} µs)")
        alone, from_timestamp = best.pop("alone"), best.pop("from-ts")
        for name, micros in best.items():
            print(f"  {name:6s} {micros:6.2f} µs")
        print(f"  total  {sum(best.values()):6.2f} µs")
        print(f"  land   {alone:6.2f} µs by a writer alone on its partitions: total "
              f"{sum(best.values()) - best['land'] + alone:.2f} µs")
        print(f"  stamp  {from_timestamp:6.2f} µs under first_hop: timestamp (the first-hops script): total "
              f"{sum(best.values()) - best['land'] + alone - best['stamp'] + from_timestamp:.2f} µs")
        print(f"  floor  {floor:6.2f} µs per script: read four fields of a key's state hash and write them back")
        print(f"memo: {memo_bytes_per_record(args.port, rule, settings):.1f} bytes of Redis memory per first-hop record")


if __name__ == "__main__":
    main()
