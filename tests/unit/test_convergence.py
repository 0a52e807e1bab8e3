"""Replicas converge under every ordered policy, whatever the delivery order, duplicates and delays.

The model: 2 to 5 regions write and delete a few keys. Each write is stamped
as a stamping producer does it: the region's hybrid clock first observes the
highest timestamp the region has seen for the key, and the vector is the merge
of every vector the region has seen for the key, incremented at the region.
Every version is sent to every other region and arrives in a random order,
interleaved with further writes, some of them more than once. Each replica
applies `decide` against the version it holds. When everything has arrived,
every replica must hold the same version of each key, the one
`resolved_winner` names, and the one the policy defines.
"""

import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amity.clock import HybridClock, pack, physical_ms
from amity.policies import Decision, Version, decide, rank, resolved_winner
from amity.rules import ConflictRule, Policy
from amity.vectors import Order, Vector, compare, depth, increment, merge

REGIONS = ["ap", "eu", "us", "sa", "af"]
KEYS = ["k1", "k2", "k3"]
PRIORITY_LIST = ["eu", "us", "ap", "sa"]  # "af" is left out: unlisted regions rank lowest

RULES = {
    "lww": ConflictRule(topic="t", policy="lww"),
    "timestamp": ConflictRule(topic="t", policy="timestamp", field="json:updated_at"),
    "region-priority": ConflictRule(topic="t", policy="region-priority", regions=PRIORITY_LIST),
    "vector": ConflictRule(topic="t", policy="vector"),
    "vector-by-priority": ConflictRule(topic="t", policy="vector", fallback="region-priority", regions=PRIORITY_LIST),
}


class WallClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


@dataclass
class Replica:
    """One region: its clock, the version it holds per key, and what it has seen per key."""

    region: str
    rule: ConflictRule
    wall: WallClock
    clock: HybridClock
    held: dict[str, Version] = field(default_factory=dict)
    seen_vector: dict[str, Vector] = field(default_factory=dict)
    seen_hlc: dict[str, int] = field(default_factory=dict)
    inbox: list[tuple[str, Version]] = field(default_factory=list)

    def stamp(self, key: str, deleted: bool, ordering: int) -> Version:
        """What a stamping producer does: observe the key's state, then stamp past it."""
        hlc = self.clock.observe(self.seen_hlc[key]) if key in self.seen_hlc else self.clock.tick()
        vector = increment(self.seen_vector.get(key, ()), self.region)
        return Version(hlc, self.region, vector, deleted, None if deleted else ordering)

    def receive(self, key: str, incoming: Version) -> Decision:
        held = self.held.get(key)
        decision = decide(self.rule, held, incoming)
        _check_decision(self.rule, held, incoming, decision)
        if decision.applies:
            self.held[key] = incoming
        self.seen_vector[key] = merge(self.seen_vector.get(key, ()), incoming.vector)
        self.seen_hlc[key] = max(self.seen_hlc.get(key, 0), incoming.hlc)
        return decision


def _check_decision(rule: ConflictRule, held: Version | None, incoming: Version, decision: Decision) -> None:
    """Per-arrival guarantees: the held rank never goes down; dominance decides where the policy says so."""
    if held is None:
        assert decision is Decision.APPLY
        return
    assert (rank(rule, incoming) > rank(rule, held)) == decision.applies or decision is Decision.DUPLICATE
    order = compare(incoming.vector, held.vector)
    if rule.policy is Policy.VECTOR:
        assert decision.is_conflict == (order is Order.CONCURRENT)
    if rule.policy is not Policy.TIMESTAMP:
        if order is Order.BEFORE:
            assert decision is Decision.STALE
        if order is Order.AFTER:
            assert decision is Decision.APPLY


steps = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 4), st.sampled_from(KEYS), st.booleans(), st.integers(990, 1_010)),
    st.tuples(st.just("deliver"), st.integers(0, 4), st.integers(0, 1_000)),
    st.tuples(st.just("redeliver"), st.integers(0, 4), st.integers(0, 1_000)),
    st.tuples(st.just("clock"), st.integers(0, 4), st.integers(-30, 30)),
)


@dataclass
class World:
    replicas: list[Replica]
    sent: list[tuple[str, Version]] = field(default_factory=list)

    def run(self, step: tuple) -> None:
        kind, index, *args = step
        replica = self.replicas[index % len(self.replicas)]
        if kind == "write":
            self.write(replica, *args)
        elif kind == "deliver" and replica.inbox:
            replica.receive(*replica.inbox.pop(args[0] % len(replica.inbox)))
        elif kind == "redeliver" and self.sent:
            replica.inbox.append(self.sent[args[0] % len(self.sent)])
        elif kind == "clock":
            replica.wall.ms = max(0, replica.wall.ms + args[0])

    def write(self, replica: Replica, key: str, deleted: bool, ordering: int) -> None:
        version = replica.stamp(key, deleted, ordering)
        local = replica.receive(key, version)
        if replica.rule.policy is not Policy.TIMESTAMP:
            assert local is Decision.APPLY, "a region's own new write ranks above everything it has seen"
        self.sent.append((key, version))
        for other in self.replicas:
            if other is not replica:
                other.inbox.append((key, version))

    def drain(self, random) -> None:
        for replica in self.replicas:
            random.shuffle(replica.inbox)
            while replica.inbox:
                replica.receive(*replica.inbox.pop())

    def history(self, key: str) -> list[Version]:
        return [version for k, version in self.sent if k == key]


def build_world(rule: ConflictRule, regions: int, offsets: list[int]) -> World:
    replicas = []
    for name, offset in zip(REGIONS[:regions], offsets):
        wall = WallClock(1_000 + offset)
        replicas.append(Replica(name, rule, wall, HybridClock(wall, max_skew_ms=10_000)))
    return World(replicas)


def _policy_winner(rule: ConflictRule, history: list[Version]) -> Version:
    """The winner as the policy's documentation defines it, written without `rank`."""
    if rule.policy is Policy.LWW or (rule.policy is Policy.VECTOR and rule.fallback is None):
        return max(history, key=lambda x: (x.hlc, x.origin))
    if rule.policy is Policy.TIMESTAMP:
        return max(history, key=lambda x: (physical_ms(x.hlc) if x.deleted else x.field, x.hlc, x.origin))
    deepest = max(depth(x.vector) for x in history)
    candidates = [x for x in history if depth(x.vector) == deepest]
    top = min(_listed_at(x.origin) for x in candidates)
    return max((x for x in candidates if _listed_at(x.origin) == top), key=lambda x: (x.hlc, x.origin))


def _listed_at(region: str) -> int:
    return PRIORITY_LIST.index(region) if region in PRIORITY_LIST else len(PRIORITY_LIST)


def _assert_stamping_requirement(history: list[Version]) -> None:
    for a, b in itertools.permutations(history, 2):
        if compare(a.vector, b.vector) is Order.AFTER:
            assert a.hlc > b.hlc


@pytest.mark.parametrize("policy", list(RULES))
@settings(max_examples=300, deadline=None)
@given(
    regions=st.integers(2, 5),
    offsets=st.lists(st.integers(0, 3), min_size=5, max_size=5),
    schedule=st.lists(steps, min_size=1, max_size=80),
    random=st.randoms(use_true_random=False),
)
def test_replicas_converge_to_the_policy_winner(
    policy: str, regions: int, offsets: list[int], schedule: list, random
) -> None:
    rule = RULES[policy]
    world = build_world(rule, regions, offsets)
    for step in schedule:
        world.run(step)
    world.drain(random)

    for key in KEYS:
        history = world.history(key)
        held = {replica.region: replica.held.get(key) for replica in world.replicas}
        if not history:
            assert set(held.values()) == {None}
            continue
        _assert_stamping_requirement(history)
        winner = resolved_winner(rule, history)
        assert set(held.values()) == {winner}, f"replicas diverged on {key}"
        assert winner == _policy_winner(rule, history)
        if rule.policy is not Policy.TIMESTAMP:
            assert not any(compare(winner.vector, x.vector) is Order.BEFORE for x in history), "a dominated version won"

    before = [dict(replica.held) for replica in world.replicas]
    for replica in world.replicas:
        for key, version in world.sent:
            assert replica.receive(key, version) in (Decision.STALE, Decision.DUPLICATE, Decision.CONFLICT_STALE)
    assert [dict(replica.held) for replica in world.replicas] == before, "applying twice changed the state"


@pytest.mark.parametrize("policy", list(RULES))
def test_a_late_older_write_never_resurrects_a_deleted_key(policy: str) -> None:
    rule = RULES[policy]
    world = build_world(rule, 3, [0, 0, 0])
    us, eu, ap = world.replicas[2], world.replicas[1], world.replicas[0]
    world.write(us, "k1", deleted=False, ordering=900)
    world.write(us, "k1", deleted=True, ordering=0)
    write, delete = world.sent
    eu.inbox.clear()
    assert eu.receive(*delete) is Decision.APPLY
    assert eu.receive(*write) is Decision.STALE
    for arrivals in itertools.permutations([write, delete, write]):
        ap.held.clear()
        for arrival in arrivals:
            ap.receive(*arrival)
        assert ap.held["k1"].deleted
    assert us.held["k1"] == eu.held["k1"] == ap.held["k1"] == delete[1]


# region-priority: why the order is (depth, priority, ...) and not "dominance, else priority"

COUNTEREXAMPLE_PRIORITY = ["eu", "ap", "us"]


def pairwise_priority(held: Version | None, incoming: Version) -> bool:
    """The intuitive pairwise rule: a causally newer write wins, concurrent ones go to the higher region."""
    if held is None:
        return True
    order = compare(incoming.vector, held.vector)
    if order is not Order.CONCURRENT:
        return order is Order.AFTER
    return COUNTEREXAMPLE_PRIORITY.index(incoming.origin) < COUNTEREXAMPLE_PRIORITY.index(held.origin)


def counterexample() -> tuple[Version, Version, Version]:
    """eu writes Y; us sees Y and writes X; ap writes Z having seen neither.

    Pairwise: X beats Y (dominance), Y beats Z (eu above ap), Z beats X (ap above us): a cycle.
    """
    y = Version(pack(1_000, 0), "eu", (("eu", 1),))
    x = Version(pack(1_000, 1), "us", (("eu", 1), ("us", 1)))
    z = Version(pack(1_000, 0), "ap", (("ap", 1),))
    return x, y, z


def test_pairwise_dominance_else_priority_is_a_cycle() -> None:
    x, y, z = counterexample()
    assert pairwise_priority(y, x) and not pairwise_priority(x, y)
    assert pairwise_priority(z, y) and not pairwise_priority(y, z)
    assert pairwise_priority(x, z) and not pairwise_priority(z, x)


def test_pairwise_rule_diverges_with_arrival_order_where_the_rank_does_not() -> None:
    x, y, z = counterexample()
    rule = ConflictRule(topic="t", policy="region-priority", regions=COUNTEREXAMPLE_PRIORITY)

    def pairwise_fold(arrivals: tuple[Version, ...]) -> Version | None:
        held = None
        for arriving in arrivals:
            held = arriving if pairwise_priority(held, arriving) else held
        return held

    def rank_fold(arrivals: tuple[Version, ...]) -> Version | None:
        held = None
        for arriving in arrivals:
            held = arriving if decide(rule, held, arriving).applies else held
        return held

    orders = list(itertools.permutations([x, y, z]))
    assert pairwise_fold((y, z, x)) == x
    assert pairwise_fold((x, y, z)) == z
    assert {rank_fold(order) for order in orders} == {x}
