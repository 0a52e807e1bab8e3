"""Convergence with real mirrors: concurrent conflicting writes and deletes in every region, then quiescence.

Every region's resolved view must be identical and equal to what the policy
says over every write any region acknowledged, also when a mirror is killed
mid-run or a region's version state is wiped mid-run. The writers are
amity.Producers, so each key's last record, what compaction keeps, must be that
winner too, in every region; except where plain producers write under
`first_hop: timestamp` (the mirror stamps their records from their timestamps),
where only the views are promised.
"""

import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from confluent_kafka import Producer as KafkaProducer

from amity import Producer, ResolvedView
from amity.policies import resolved_winner
from amity.regions import Region
from amity.rules import ConflictRule, RuleSet
from amity.state import StateLost, StateSettings
from amity.stored import read_to_end, stored_version
from tests.integration.conflicts.conftest import clear_namespace
from tests.support.kafka import create_topic, read_all
from tests.support.mirror import MirrorProcess, wait_for

KEYS = 25
WRITES = 400


class Scenario:
    """Regions in a full mesh under one rule, a state namespace of their own, and a writer per region: amity.Producer,
    or with `plain` a plain Kafka producer whose records the mirror stamps at their first hop."""

    def __init__(self, regions: dict[str, Region], topic: str, rule: ConflictRule, workdir: Path,
                 plain: bool = False) -> None:
        self.regions = regions
        self.plain = plain
        self.topic = topic
        self.rule = rule
        self.rules = RuleSet(rules=[rule])
        self.namespace = f"conv-{uuid.uuid4().hex[:8]}"
        self.state = StateSettings(namespace=self.namespace)
        self.workdir = workdir
        self.written: dict[str, int] = {}
        for region in regions.values():
            create_topic(region.bootstrap, topic, partitions=3)

    def mirror(self, delivery: str = "at-least-once") -> MirrorProcess:
        names = list(self.regions)
        links = [{"source": a, "destination": b, "include": [self.topic], "delivery": delivery}
                 for a in names for b in names if a != b]
        config_rules = [self.rule.model_dump(mode="json", exclude_none=True)]
        worker = MirrorProcess(self.workdir, self.regions, links, env={"AMITY_MIRROR_STATE_NAMESPACE": self.namespace})
        worker.add_rules(config_rules)
        return worker.start()

    def write_concurrently(self, during=None) -> None:
        """Every region writes at once; `during` runs while the writers wait halfway, so records still flow after
        it (a wipe is met by later batches, whatever the mirror's pace)."""
        self._halfway = threading.Event()
        threads = [threading.Thread(target=self._writer, args=(name, seed)) for seed, name in enumerate(self.regions)]
        for thread in threads:
            thread.start()
        if during is not None:
            during()
        self._halfway.set()
        for thread in threads:
            thread.join()
        assert self.written == {name: WRITES for name in self.regions}, "a writer failed"

    def _writer(self, name: str, seed: int) -> None:
        """Batches of 20 over about 5 s, so that crashes and wipes land mid-run."""
        rng = random.Random(seed)
        with self._plain(name) if self.plain else self._stamping(name) as send:
            for start in range(0, WRITES, 20):
                if start == WRITES // 2:
                    assert self._halfway.wait(120), "the action between the halves did not finish"
                send([(f"key-{rng.randrange(KEYS)}".encode(), None if rng.random() < 0.15 else f"{name}-{n}".encode())
                      for n in range(start, start + 20)])
                time.sleep(rng.uniform(0.1, 0.4))
        self.written[name] = WRITES

    @contextmanager
    def _stamping(self, name: str) -> Iterator[Callable[[list], None]]:
        """Sends batches through amity.Producer, stamped as they are written; flushes at the end."""
        with Producer(self.regions[name], self.rules, settings=self.state) as producer:
            def send(batch: list) -> None:
                self._until_rebuilt(producer, lambda: producer.produce_batch(self.topic, batch))
                self._until_rebuilt(producer, lambda: producer.poll(0))
            yield send
            self._until_rebuilt(producer, producer.flush)

    @contextmanager
    def _plain(self, name: str) -> Iterator[Callable[[list], None]]:
        """Sends batches through a plain Kafka producer, timestamps rising by at least 1 ms per record; flushes."""
        producer = KafkaProducer({**self.regions[name].kafka_config(), "enable.idempotence": True})
        timestamp_ms = 0

        def send(batch: list) -> None:
            nonlocal timestamp_ms
            for key, value in batch:
                timestamp_ms = max(int(time.time() * 1000), timestamp_ms + 1)
                producer.produce(self.topic, key=key, value=value, timestamp=timestamp_ms)
            producer.poll(0)
        yield send
        assert producer.flush(30) == 0

    @staticmethod
    def _until_rebuilt(producer: Producer, action) -> None:
        """As an application must: after a wipe, wait for the mirror's rebuild, then try again.

        A refused stamp sent nothing, and refused acknowledgements are kept for the next try.
        """
        deadline = time.monotonic() + 60
        while True:
            try:
                action()
                return
            except StateLost:
                assert time.monotonic() < deadline, "the version state was not rebuilt within 60 s"
                time.sleep(0.5)
                try:
                    producer.state.adopt()
                except StateLost:
                    pass

    def views(self) -> dict[str, dict]:
        return {name: {k: (r.value, r.version.hlc, r.version.origin)
                       for k, r in ResolvedView(region, self.topic, self.rule).read(include_deleted=True).items()}
                for name, region in self.regions.items()}

    def last_records(self) -> dict[str, dict]:
        """Per region, each key's last record in the topic, as (value, hlc, origin)."""
        lasts: dict[str, dict] = {}
        for name, region in self.regions.items():
            last = {}
            for msg in read_to_end(region.kafka_config(), self.topic, 60):
                version = stored_version(self.rule, name, msg, None)
                last[msg.key()] = (msg.value(), version.hlc, version.origin)
            lasts[name] = last
        return lasts

    def expected(self) -> dict:
        """The policy's winner per key over every write acknowledged in its own region."""
        versions: dict[bytes, list] = {}
        values: dict = {}
        for name, region in self.regions.items():
            for msg in read_to_end(region.kafka_config(), self.topic, 60):
                version = stored_version(self.rule, name, msg, None)
                if version.origin == name:
                    versions.setdefault(msg.key(), []).append(version)
                    values[(msg.key(), version.hlc, version.origin)] = msg.value()
        winners = {key: resolved_winner(self.rule, found) for key, found in versions.items()}
        return {key: (values[(key, v.hlc, v.origin)], v.hlc, v.origin) for key, v in winners.items()}

    def converged(self) -> dict | None:
        views = self.views()
        first = next(iter(views.values()))
        return first if all(view == first for view in views.values()) and len(first) == KEYS else None

    def wipe_state(self, region: str) -> int:
        client = redis.Redis.from_url(self.regions[region].redis)
        try:
            return clear_namespace(client, self.namespace)
        finally:
            client.close()


def conflict_totals(worker: MirrorProcess) -> Counter:
    totals: Counter = Counter()
    for entry in worker.stats().get("report", {}).get("topics", []):
        for what, count in entry["conflicts"].items():
            totals[what] += count
    return totals


def tail_repairs(worker: MirrorProcess) -> int:
    """Winners the worker appended again after a raced write (its log says how many, per batch)."""
    return sum(int(found) for found in re.findall(r"re-appended (\d+) winning records", worker.log.read_text()))


def settle(scenario: Scenario, worker: MirrorProcess) -> dict:
    view = wait_for(scenario.converged, timeout_s=120, interval_s=2, message="identical resolved views")
    time.sleep(3)
    assert scenario.converged() == view, "views changed after they matched: not quiescent"
    assert view == scenario.expected()
    if scenario.plain:  # the last record per key is promised only to amity.Producer's writes
        return view
    wait_for(lambda: all(last == view for last in scenario.last_records().values()), timeout_s=30, interval_s=2,
             message="every region's last record per key equal to the resolved view")
    print(f"{scenario.rule.policy} over {list(scenario.regions)}: {conflict_totals(worker)}, "
          f"tail repairs {tail_repairs(worker)}")
    return view


@pytest.mark.parametrize("policy", ["lww", "vector", "region-priority"])
def test_two_regions_converge_to_the_policy_winner(regions, topic, tmp_path: Path, policy: str) -> None:
    options = {"regions": ["eu", "us"]} if policy == "region-priority" else {}
    scenario = Scenario({n: regions[n] for n in ("us", "eu")}, topic, ConflictRule(topic=topic, policy=policy,
                                                                                     **options), tmp_path)
    worker = scenario.mirror()
    try:
        scenario.write_concurrently()
        settle(scenario, worker)
        if policy == "vector":
            def counted_and_recorded() -> bool:  # the stats file is written every few seconds: it may lag
                totals = conflict_totals(worker)
                recorded = sum(len(read_all(r.bootstrap, f"{topic}.conflicts")) for r in scenario.regions.values())
                return totals["detected"] > 0 and totals["conflicts_topic"] == totals["detected"] == recorded
            wait_for(counted_and_recorded, timeout_s=30, interval_s=2,
                     message="every conflict counted once and recorded in the conflicts topics")
    finally:
        assert worker.stop() == 0


def test_plain_clients_records_stamped_from_their_timestamps_converge(regions, topic, tmp_path: Path) -> None:
    """`first_hop: timestamp`: plain producers' records, stamped from their timestamps alone at their first hop,
    converge in every region's resolved view to the lww winner over those stamps."""
    rule = ConflictRule(topic=topic, policy="lww", first_hop="timestamp")
    scenario = Scenario({n: regions[n] for n in ("us", "eu")}, topic, rule, tmp_path, plain=True)
    worker = scenario.mirror()
    try:
        scenario.write_concurrently()
        settle(scenario, worker)
    finally:
        assert worker.stop() == 0


def test_exactly_once_links_converge_and_keep_the_winner_last(regions, topic, tmp_path: Path) -> None:
    """Under exactly-once, records are landed once their partition's transaction committed."""
    scenario = Scenario({n: regions[n] for n in ("us", "eu")}, topic, ConflictRule(topic=topic, policy="lww"),
                        tmp_path)
    worker = scenario.mirror(delivery="exactly-once")
    try:
        scenario.write_concurrently()
        settle(scenario, worker)
    finally:
        assert worker.stop() == 0


def test_three_region_mesh_converges_with_a_mirror_killed_mid_run(regions, topic, tmp_path: Path) -> None:
    scenario = Scenario(regions, topic, ConflictRule(topic=topic, policy="lww"), tmp_path)
    workers = [scenario.mirror()]

    def crash() -> None:
        time.sleep(2)
        workers[0].kill9()
        workers.append(scenario.mirror())

    try:
        scenario.write_concurrently(during=crash)
        settle(scenario, workers[-1])
    finally:
        assert workers[-1].stop() == 0


@pytest.mark.parametrize("first_hop", ["state", "timestamp"])
def test_a_wiped_version_state_is_rebuilt_and_convergence_holds(regions, topic, tmp_path: Path,
                                                                  first_hop: str) -> None:
    """With `first_hop: timestamp` the writers are plain producers: the wipe is also met by the first-hops
    script of the link out of eu."""
    rule = ConflictRule(topic=topic, policy="lww", first_hop=first_hop)
    scenario = Scenario({n: regions[n] for n in ("us", "eu")}, topic, rule, tmp_path, plain=first_hop == "timestamp")
    worker = scenario.mirror()
    wiped = []

    def wipe_once_eu_is_resolved_into() -> None:
        """A worker that first meets the state after the wipe takes it for a fresh one: nothing to rebuild."""
        wait_for(lambda: worker.topic_stats("us-to-eu", topic).get("replicated", 0) > 0, timeout_s=30,
                 message="the first records resolved into eu")
        wiped.append(scenario.wipe_state("eu"))

    try:
        scenario.write_concurrently(during=wipe_once_eu_is_resolved_into)
        settle(scenario, worker)
        assert wiped and wiped[0] > 0
        assert "rebuilt the version state of eu" in worker.log.read_text()
    finally:
        assert worker.stop() == 0
