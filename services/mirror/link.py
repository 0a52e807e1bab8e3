"""One link's replication loop: consume the source, route, produce into the destination.

At-least-once (default): an idempotent producer (acks=all) writes each batch;
source offsets are committed only over batches the destination fully
acknowledged (amity.mirror.acks). A crash re-reads at most the unacknowledged
tail.

Exactly-once: one transactional producer per source partition, its
transactional.id derived from (link, topic, partition), so a worker taking a
partition over fences any zombie still holding it. Each transaction carries the
partition's records, its dead letters and its next source offset
(amity.mirror.offsets); on assignment the consumer seeks to the stored offset.
A batch's transactions commit while the next batch is read and routed; they are
settled before that batch opens its own, and a partition whose commit failed is
rewound and drops its share of that batch. A link that has caught up (a small
batch) waits for them before it routes, and takes in what arrived meanwhile.

Records of resolved topics are landed once acknowledged (after their
transaction commits, under exactly-once), before the source offsets move on:
a race with a local writer that left a losing version last in the log is
repaired there (amity.tails).
"""

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from itertools import repeat

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from redis import RedisError

from amity.errors import one_line
from amity.links import Delivery, Link
from amity.mirror.acks import AckTracker, Batch
from amity.mirror.offsets import CONFIG as OFFSETS_CONFIG
from amity.mirror.offsets import OffsetStore, offsets_topic
from amity.mirror.refusals import Refusals
from amity.mirror.resolution import (
    RegionRedisError, RegionStateLost, Resolution, conflict_headers, conflicts_topic,
)
from amity.mirror.router import Message, Routed, Router
from amity.mirror.settings import MirrorSettings
from amity.mirror.stats import LinkStats
from amity.mirror.topics import ClusterUnavailable, TopicPlan, TopicRefused, TopicSync
from amity.mirror.written import ResolvedWrites
from amity.regions import READER_CONFIG, Region
from amity.rules import RuleSet
from amity.state import StateSettings
from amity.tails import ANY_PARTITION, Report, Tails, landing_of

log = logging.getLogger(__name__)

PRODUCER_MAX_BYTES = 16 * 1024 * 1024
DLQ_CONFIG = {"max.message.bytes": str(PRODUCER_MAX_BYTES), "retention.ms": str(14 * 24 * 3600 * 1000)}
DLQ_VALUE_LIMIT = 1024 * 1024
STALL_S = 10.0
COMMIT_THREADS = 8  # exactly-once: transactions of a batch committed side by side
# Exactly-once: a batch of fewer records (a link that has caught up) waits for the commits in flight before it is
# routed, and takes in what arrived meanwhile; a larger one (a backlog) is routed while they commit.
LIGHT_BATCH = 1000
SUSPECT_FLUSH_S = 30.0  # longest wait for a suspect (amity.mirror.refusals) and the records before it
# Aligned with a list of forwarded records: a resolved record's (state hash, rank), None for the others.
Versions = list[tuple[bytes, bytes] | None]


def dlq_topic(link: Link) -> str:
    """The link's dead-letter topic in the destination; `.dlq` topics are never mirrored."""
    return f"amity.{link.source}.{link.destination}.dlq"


class LinkRunner:
    """Replicates one link until stopped. Runs on its own thread."""

    def __init__(self, link: Link, source: Region, destination: Region, router: Router,
                 settings: MirrorSettings, stats: LinkStats, link_id: str | None = None) -> None:
        self.link = link
        # Two links may join the same pair of regions (for disjoint topics): the id, not the pair, names one.
        self.id = link_id or link.name
        self.source = source
        self.destination = destination
        self.settings = settings
        self.stats = stats
        self.router = router
        self.exactly_once = link.delivery is Delivery.EXACTLY_ONCE
        self._batch_size = settings.transaction_batch_size if self.exactly_once else settings.batch_size
        self._stop = threading.Event()
        self._plans: dict[str, TopicPlan] = {}
        self._destinations: dict[str, tuple[str, bool]] = {}
        self._max_bytes: dict[str, int] = {}
        self._compacted: frozenset[str] = frozenset()  # source topics whose destination takes keyed records only
        self._windows: dict[str, tuple[int, int]] = {}  # source topic -> its destination's timestamp window
        # Source topics whose destination refused a record's timestamp: from then on checked record by record
        # (before, the destination's answer is the check: a record's timestamp costs a call to read).
        self._timestamps_checked: set[str] = set()
        self._refusals = Refusals(link.destination)
        self._alone: set[int] = set()  # ids of this batch's messages to write in a produce request of their own
        self._subscribed: list[str] = []
        # Assigned partitions not read to their end since assigned or rewound; None while the consumer holds none.
        self._unread: set[tuple[str, int]] | None = None
        self._tracker = AckTracker()
        self._txn_producers: dict[tuple[str, int], Producer] = {}
        self._revoked: set[tuple[str, int]] = set()  # partitions revoked during the read in progress (_read_more)
        # Exactly-once: transactions still committing, by partition: the commit, what it will land, its position.
        self._committing: dict[tuple[str, int], tuple[Future, list[Report], int]] = {}
        self._offsets = OffsetStore(destination.kafka_config(), offsets_topic(link.source))
        self._batch_bytes = 0
        # source topic -> its conflicts topic, created; None when the destination refused to create it
        self._conflict_topics: dict[str, str | None] = {}
        state_settings = StateSettings(namespace=settings.state_namespace, engine=settings.state_engine)
        self.resolution = Resolution(link, source, destination, router.rules, state_settings,
                                     settings.redis_timeout_s)
        self.tails = Tails(destination, self.resolution.clients[link.destination], state_settings)
        self._committer = ThreadPoolExecutor(max_workers=COMMIT_THREADS, thread_name_prefix=f"amity-commit-{self.id}")
        self._landings: list[Report] = []
        # At-least-once: the resolved records of batches in flight, oldest first, landed once their batch is done.
        self._written: deque[ResolvedWrites] = deque()
        # At-least-once: landing runs beside the next batches; acknowledged positions wait here, in order, for
        # the landing of their records (None: nothing to land) before they are committed.
        self._lander = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"amity-land-{self.id}")
        self._landing: deque[tuple[Future | None, dict[tuple[str, int], int]]] = deque()
        self._progress_at = time.monotonic()
        self._sync: TopicSync | None = None
        self._discovered: dict[str, TopicPlan] | Exception | None = None  # set by the discovery thread
        self.consumer: Consumer | None = None
        self.producer: Producer | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Replicate until `stop()`; a cluster that is down is waited for, never a reason to exit."""
        threading.Thread(target=self._discover, name=f"amity-discovery-{self.id}", daemon=True).start()
        backoff = 0.5
        while not self.stopping:
            try:
                self._setup()
                backoff = 0.5
                self._loop()
            except RegionStateLost as exc:
                self.stats.healthy(False, str(exc))
                log.error("link %s: %s", self.id, exc)
                self._teardown(graceful=False)
                self._recover_state(exc.region)
            except (KafkaException, RedisError, OSError, TopicRefused, ClusterUnavailable) as exc:  # a cluster away
                backoff = self._restart_after(backoff, one_line(exc))
            except Exception as exc:  # a bug: restarting from the committed positions beats a silently dead link
                log.exception("link %s: unexpected error", self.id)
                backoff = self._restart_after(backoff, f"unexpected error: {one_line(exc)}")
        self._teardown(graceful=True)
        self._lander.shutdown()
        self.tails.close()
        self._committer.shutdown()

    def _restart_after(self, backoff: float, reason: str) -> float:
        """Report the link unhealthy, drop its clients and wait: the next setup resumes from committed positions.
        The wait after the next failure."""
        self.stats.healthy(False, reason)
        log.warning("link %s: %s; retrying in %.1fs", self.id, reason, backoff)
        self._teardown(graceful=False)
        self._stop.wait(backoff)
        return min(backoff * 2, self.settings.retry_backoff_max_s)

    def _discover(self) -> None:
        """Sync topics every discovery interval off the replication thread, which picks the result up.

        A sync is several admin round trips to both clusters; on the replication thread it held every
        record back while it ran. A failure is handed over too, and raised there as if the sync ran there.
        """
        while not self._stop.wait(self.settings.discovery_interval_s):
            sync = self._sync
            if sync is None or self._discovered is not None:
                continue
            try:
                self._discovered = sync.sync()
            except Exception as exc:  # handed to the replication thread, which owns the error handling
                self._discovered = exc

    def _recover_state(self, region: str) -> None:
        """Rebuild (or wait for another worker's rebuild of) a region's lost version state; resolve nothing meanwhile."""
        backoff = 1.0
        while not self.stopping:
            try:
                if self.resolution.rebuild(region, self._resolved_topics(region), self.router.rules):
                    return
            except (KafkaException, RedisError) as exc:
                log.warning("link %s: rebuilding the state of %s failed: %s", self.id, region, exc)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.settings.retry_backoff_max_s)

    def _resolved_topics(self, region: str) -> list[str]:
        """The topics under a conflict rule, by their names in `region`."""
        names = [plan.source if region == self.link.source else plan.destination
                 for plan in self._plans.values() if self.router.is_resolved(plan.source)]
        return sorted(set(names))

    def set_rules(self, rules: RuleSet) -> None:
        """New conflict rules apply from the next batch on, without a restart."""
        self.router.set_rules(rules)
        self.resolution.set_rules(rules)

    def _setup(self) -> None:
        sync = TopicSync(self.link, AdminClient(self.source.kafka_config()),
                         AdminClient(self.destination.kafka_config()), PRODUCER_MAX_BYTES)
        sync.ensure_internal(dlq_topic(self.link), DLQ_CONFIG)
        if self.exactly_once:
            sync.ensure_internal(self._offsets.topic, OFFSETS_CONFIG)
        self._sync = sync
        self._discovered = None
        self._apply_plans(sync.sync())
        self.consumer = Consumer(self._consumer_config())
        self._unread = None
        if not self.exactly_once:
            self.producer = Producer(self._producer_config())
        self._subscribe(force=True)
        if not self.stats.problem:  # a first start; after a failure, health returns with progress (_watch_progress)
            self.stats.healthy(True, "")

    def _loop(self) -> None:
        next_stats = time.monotonic() + self.settings.stats_interval_s
        while not self.stopping:
            messages = self._next_batch()
            if self._committing and len(messages) < min(LIGHT_BATCH, self._batch_size):
                messages = self._arrived_during_commits(messages)
            records = self._without_errors(messages)
            if records:
                self._replicate(records)
            elif self._committing:
                self._settle_commits()
            elif self.exactly_once:
                self._healthy_if_caught_up()
            if not self.exactly_once:
                self._commit_acknowledged()
            self._take_discovered()
            now = time.monotonic()
            if now >= next_stats:
                self._measure_lag()
                next_stats = now + self.settings.stats_interval_s

    def _take_discovered(self) -> None:
        """Apply the topics the discovery thread found since the last batch, or raise what its sync raised."""
        found = self._discovered
        if found is None:
            return
        self._discovered = None
        if isinstance(found, Exception):
            raise found
        self._apply_plans(found)
        self._subscribe()

    def _next_batch(self) -> list:
        """The next record as soon as it arrives, with whatever else is already fetched.

        consume(n, timeout) alone waits for n records or the whole timeout: under light load every
        record would wait out the timeout.
        """
        first = self.consumer.poll(self.settings.poll_timeout_s)
        if first is None:
            return []
        return self._read_more([first], self._batch_size - 1)

    def _arrived_during_commits(self, messages: list) -> list:
        """Exactly-once with little to read: wait for the transactions in commit, then take what arrived meanwhile
        into this batch. Read first, as a backlog's batches are, those records would wait for this batch's commit
        and then their own: a whole commit more. The commits are settled as any batch settles them (a rewound
        partition drops its share there)."""
        self._wait_for_commits([commit for commit, _, _ in self._committing.values()])
        return self._read_more(messages, self._batch_size - len(messages))

    def _read_more(self, read: list, wanted: int) -> list:
        """`read` and up to `wanted` messages more, of those fetched already.

        A read may serve a rebalance. librdkafka drops a revoked partition's records from that read, not from
        the reads before it: those are dropped here, as their partition's next owner (maybe this link again)
        reads them from the position stored for it. Kept, an exactly-once link found no transaction for them.
        """
        self._revoked.clear()
        more = self.consumer.consume(wanted, timeout=0)
        if self._revoked:
            read = [msg for msg in read if (msg.topic(), msg.partition()) not in self._revoked]
        return read + more

    def _without_errors(self, messages: list) -> list[Message]:
        records = []
        for msg in messages:
            error = msg.error()
            if error is None:
                records.append(msg)
            elif error.code() == KafkaError._PARTITION_EOF:
                if self._unread:
                    self._unread.discard((msg.topic(), msg.partition()))
            else:
                if error.fatal() or not error.retriable():
                    raise KafkaException(error)
                log.warning("link %s: consume error on %s: %s", self.id, msg.topic(), error)
        return records

    def _replicate(self, records: list[Message]) -> None:
        windows = {topic: self._windows[topic] for topic in self._timestamps_checked if topic in self._windows}
        routed = self.router.route(records, self._max_bytes, self._compacted, windows)
        positions = _next_positions(records)
        conflicts: list = []
        versions: Versions | None = None
        if routed.resolve:
            try:
                self.tails.register(self._written_partitions(positions))
            except RedisError as exc:
                raise RegionRedisError(self.link.destination, exc) from exc
            decided = self.resolution.decide(routed.resolve)
            versions = [None] * len(routed.forward) + decided.versions
            routed.forward.extend(decided.forward)
            routed.dead.extend(decided.dead)
            self.stats.count_decided(decided)
            conflicts = self._recordable(decided.conflicts, routed.dead)
        routed.conflicts = conflicts
        self._alone = set()
        if self._refusals:
            versions, self._alone = self._refusals.divert(routed, versions, self._destination_topic)
        self.stats.count_routed(routed, records)
        if self.exactly_once:
            self._replicate_transactionally(routed, positions, versions)
        else:
            self._replicate_acknowledged(routed, positions, versions)

    def _replicate_acknowledged(self, routed: Routed, positions: dict[tuple[str, int], int],
                                versions: Versions | None) -> None:
        batch = self._tracker.open(positions)
        writes = None
        if versions is not None:
            writes = ResolvedWrites(batch, routed.forward, versions, self._destination_topic, self._alone)
            self._written.append(writes)
        self._produce_forward(self.producer, routed.forward, batch.delivered, versions, self._landings, writes)
        batch.pending += len(routed.forward)
        for msg, reason, detail in routed.dead:
            self._dead_letter(self.producer, msg, reason, detail, batch)
        for msg, headers, outcome in routed.conflicts:
            self._record_conflict(self.producer, msg, headers, outcome, batch)
        batch.sealed = True
        self.producer.poll(0)

    def _replicate_transactionally(self, routed: Routed, positions: dict[tuple[str, int], int],
                                   versions: Versions | None) -> None:
        forward = defaultdict(list)
        landed = defaultdict(list)  # aligned with forward, partition by partition
        for entry, version in zip(routed.forward, versions or repeat(None)):
            tp = (entry[0].topic(), entry[0].partition())
            forward[tp].append(entry)
            landed[tp].append(version)
        dead = defaultdict(list)
        for entry in routed.dead:
            dead[(entry[0].topic(), entry[0].partition())].append(entry)
        conflicts = defaultdict(list)
        for entry in routed.conflicts:
            conflicts[(entry[0].topic(), entry[0].partition())].append(entry)
        rewound = self._settle_commits()
        timeout = self.settings.transaction_timeout_ms / 1000
        for tp, next_offset in positions.items():
            if tp in rewound:
                log.info("link %s: %s[%d] was rewound while this batch was read: its %d records here are read "
                         "again from the stored offset", self.id, tp[0], tp[1], len(forward.get(tp, ())))
                continue
            landings = self._stage_partition(tp, forward.get(tp, ()), dead.get(tp, ()), conflicts.get(tp, ()),
                                             next_offset, landed.get(tp))
            if landings is not None:
                commit = self._committer.submit(self._txn_producers[tp].commit_transaction, timeout)
                self._committing[tp] = (commit, landings, next_offset)

    def _stage_partition(self, tp: tuple[str, int], forward, dead, conflicts, next_offset: int,
                         versions: Versions | None) -> list[Report] | None:
        """Open the partition's transaction and write into it; where its landings will go, None if it failed."""
        producer = self._txn_producers[tp]
        landings: list[Report] = []
        producer.begin_transaction()
        try:
            self._produce_forward(producer, forward, self._refusals.observe, versions, landings)
            for msg, reason, detail in dead:
                self._dead_letter(producer, msg, reason, detail, None)
            for msg, headers, outcome in conflicts:
                self._record_conflict(producer, msg, headers, outcome, None)
            self._offsets.write(producer, tp, next_offset)
        except KafkaException as exc:
            self._abort_partition(tp, producer, exc)
            return None
        return landings

    def _settle_commits(self) -> set[tuple[str, int]]:
        """Wait for the transactions in commit, land what each one wrote; the partitions rewound after a failure.

        Commits run side by side on the committer threads, each waiting for its own acknowledgements and its
        coordinator's round trip, while the replication thread reads and routes the next batch.
        """
        committing, self._committing = self._committing, {}
        self._wait_for_commits([commit for commit, _, _ in committing.values()])
        rewound, positions = set(), []
        for tp, (commit, landings, next_offset) in committing.items():
            producer = self._txn_producers[tp]  # revocation and teardown settle before they drop producers
            try:
                commit.result()
            except KafkaException as exc:
                self._abort_partition(tp, producer, exc)
                rewound.add(tp)
                continue
            producer.poll(0)
            self._land(landings)
            positions.append(TopicPartition(tp[0], tp[1], next_offset))
        if positions:  # informational only (lag tools read it); the offsets stored in the destination rule
            self.consumer.commit(offsets=positions, asynchronous=True)
            self.stats.progressed()
        return rewound

    def _wait_for_commits(self, commits: list[Future]) -> None:
        """Wait for transactions in commit, reporting the link unhealthy while they take longer than STALL_S.

        A destination that stops answering without closing its connections fails a commit only at the
        transaction timeout: the stall is reported long before that, as at-least-once reports unacknowledged
        writes.
        """
        if wait(commits, timeout=STALL_S).not_done:
            self._report_stall()
            wait(commits)

    def _report_stall(self) -> None:
        if self.stats.is_healthy:
            self.stats.healthy(False, f"{self.link.destination} has acknowledged nothing for {STALL_S:.0f}s")
            log.warning("link %s: %s is not acknowledging writes; waiting for it", self.id, self.link.destination)

    def _abort_partition(self, tp: tuple[str, int], producer: Producer, exc: KafkaException) -> None:
        """Abort the partition's transaction and roll it back to its stored position; an error a transaction
        cannot be aborted from (fenced, fatal) is raised, and the link restarts."""
        error = exc.args[0]
        log.warning("link %s: transaction for %s[%d] failed (%s); rewinding", self.id, tp[0], tp[1], error)
        # _STATE: a write of the transaction failed already (a record the destination refused, whose report may
        # not be served yet) and the client takes no more. Abort, and go on with a fresh producer, so that one
        # stuck in that state cannot hold the partition. A producer that cannot abort raises.
        stuck = error.code() == KafkaError._STATE
        if not (stuck or error.txn_requires_abort()):
            raise exc
        producer.abort_transaction(self.settings.transaction_timeout_ms / 1000)
        if stuck:
            self._txn_producers[tp] = self._transactional_producer(TopicPartition(*tp))
        stored = self._offsets.load().get(tp)
        self._seek(tp[0], tp[1], stored if stored is not None else 0)

    def _produce_forward(self, producer: Producer, forward, on_delivery, versions: Versions | None,
                         landings: list[Report], writes: ResolvedWrites | None = None) -> None:
        """`_produce_all`, with each of this batch's suspects (amity.mirror.refusals) in a produce request of its
        own: the records before it are flushed first, and it is flushed before the records after it. A suspect
        reports to `landings`, never to `writes`."""
        if not self._alone:
            self._produce_all(producer, forward, on_delivery, versions, landings, writes)
            return
        settled = partial(_settled, on_delivery, self._refusals.settle)
        start = 0
        for index, (msg, _headers) in enumerate(forward):
            if id(msg) in self._alone:
                self._produce_all(producer, forward[start:index], on_delivery, versions and versions[start:index],
                                  landings, writes)
                producer.flush(SUSPECT_FLUSH_S)
                self._produce_all(producer, forward[index:index + 1], settled, versions and versions[index:index + 1],
                                  landings)
                producer.flush(SUSPECT_FLUSH_S)
                start = index + 1
        self._produce_all(producer, forward[start:], on_delivery, versions and versions[start:], landings, writes)

    def _produce_all(self, producer: Producer, forward, on_delivery=None, versions: Versions | None = None,
                     landings: list[Report] | None = None, writes: ResolvedWrites | None = None) -> None:
        """Write forwarded records: the hot loop, so lookups are hoisted and only a full queue leaves it.

        A record with a version (`versions` is aligned with `forward`) reports to `writes`, which stands in for
        `on_delivery` and keeps the report, or else to `landings` once acknowledged.
        """
        destinations = self._destinations
        produce = producer.produce
        land = landings.append if landings is not None else None
        resolved = writes.delivered if writes is not None else None
        for (msg, headers), version in zip(forward, versions or repeat(None)):
            topic, same_partitions = destinations.get(msg.topic()) or (self.link.destination_topic(msg.topic()), False)
            partition = msg.partition() if same_partitions else -1
            report = on_delivery if version is None else resolved or partial(_landed, on_delivery, land, *version)
            try:
                # Positional, as (topic, value, key, partition, on_delivery, callback, timestamp, headers): the
                # client looks each keyword argument up by name, some 5k instructions a record (callgrind), a
                # twentieth of a resolved record's path. `callback` is on_delivery's alias; None is no callback.
                produce(topic, msg.value(), msg.key(), partition, report, None, msg.timestamp()[1], headers)
            except BufferError:
                self._send(producer, topic, msg.key(), msg.value(), headers, partition, msg.timestamp()[1], report)

    def _written_partitions(self, positions: dict[tuple[str, int], int]) -> set[tuple[str, int]]:
        """The destination (topic, partition) pairs a batch read from these source partitions may resolve and
        write; ANY_PARTITION where the destination's partitioner picks."""
        written = set()
        for topic, partition in positions:
            if self.router.is_resolved(topic):
                destination, same_partitions = self._destination(topic)
                written.add((destination, partition if same_partitions else ANY_PARTITION))
        return written

    def _destination(self, topic: str) -> tuple[str, bool]:
        """A source topic's destination topic, and whether its records keep their partition there."""
        return self._destinations.get(topic) or (self.link.destination_topic(topic), False)

    def _destination_topic(self, topic: str) -> str:
        return self._destination(topic)[0]

    def _dead_letter(self, producer: Producer, msg: Message, reason: str, detail: str, batch: Batch | None) -> None:
        key, value, headers = dead_letter(msg, self.link.source, reason, detail)
        self._send(producer, dlq_topic(self.link), key, value, headers, -1, msg.timestamp()[1],
                   batch.delivered if batch is not None else None)
        if batch is not None:
            batch.sent()
        log.warning("link %s: dead-lettered %s[%d]@%d: %s (%s)", self.id, msg.topic(), msg.partition(),
                    msg.offset(), reason, detail)

    def _record_conflict(self, producer: Producer, msg: Message, headers, outcome, batch: Batch | None) -> None:
        """Both versions of a concurrent write, for audit: the arriving record and what it met.

        Its conflicts topic was created for the batch (`_recordable`).
        """
        self._send(producer, self._conflict_topics[msg.topic()], msg.key(), msg.value(),
                   conflict_headers(headers, outcome), -1, msg.timestamp()[1],
                   batch.delivered if batch is not None else None)
        if batch is not None:
            batch.sent()

    def _recordable(self, conflicts: list, dead: list) -> list:
        """The batch's conflicts whose conflicts topic exists, created once per plan if missing.

        The destination may refuse to create one (a name too long for it, say): those conflicts go to `dead`,
        so the audit copy is kept in the dead-letter topic and the link goes on.
        """
        for source in {entry[0].topic() for entry in conflicts}:
            if source not in self._conflict_topics:
                self._conflict_topics[source] = self._conflicts_topic_of(source)
        recordable = []
        for entry in conflicts:
            if self._conflict_topics[entry[0].topic()] is None:
                dead.append((entry[0], "conflicts-topic-refused",
                             f"a {entry[2].verdict} conflict; its conflicts topic could not be created"))
            else:
                recordable.append(entry)
        return recordable

    def _conflicts_topic_of(self, source: str) -> str | None:
        topic = conflicts_topic(self._destination_topic(source))
        try:
            self._sync.ensure_internal(topic, DLQ_CONFIG)
        except TopicRefused as exc:
            log.error("%s; its conflicts are dead-lettered instead", exc)
            return None
        return topic

    def _send(self, producer: Producer, topic: str, key, value, headers, partition: int, timestamp: int,
              on_delivery: Callable | None) -> None:
        """Produce, waiting while the local queue is full (a slow or absent destination pushes back here).

        Positional, as in `_produce_all`: dead letters and, under the vector policy, conflicts can be a large
        share of a batch.
        """
        while True:
            try:
                producer.produce(topic, value, key, partition, on_delivery, None, timestamp, headers)
                return
            except BufferError:
                producer.poll(0.1)
                if self.stopping:
                    raise KafkaException(KafkaError(KafkaError._DESTROY, "stopping with a full produce queue"))

    def _commit_acknowledged(self) -> None:
        """Land what the destination acknowledged, on the landing thread, and commit positions already landed.

        Landing is a Redis call per batch that the next batches need not wait for; a position is
        committed only once every record before it is landed, so a crash still lands them on redelivery.
        """
        positions = self._queue_acknowledged()
        failures = self._tracker.failed()
        if failures:  # checked on every turn of the loop: a failure reported after its batch was sent waits here
            self._recover_from(failures)
            return
        landed = self._landed(wait=False)
        if landed:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in landed.items()],
                                 asynchronous=True)
        self._watch_progress(bool(positions))
        self.stats.in_flight(self._tracker.in_flight)

    def _queue_acknowledged(self) -> dict[tuple[str, int], int]:
        """Hand what the destination acknowledged to the landing thread, its positions queued behind; those positions."""
        self.producer.poll(0)
        landings = self._taken_landings()
        written = self._written_done()
        positions = self._tracker.pop_committable()
        if landings or written or positions:
            landing = self._lander.submit(self._land, landings, written) if landings or written else None
            self._landing.append((landing, positions))
        return positions

    def _written_done(self) -> list[ResolvedWrites]:
        """The resolved records of the oldest batches every write of which was reported, taken off the queue."""
        done = []
        while self._written and self._written[0].batch.done:
            done.append(self._written.popleft())
        return done

    def _landed(self, wait: bool) -> dict[tuple[str, int], int]:
        """The positions whose records are landed, oldest first, taken off the queue; with `wait`, all of them."""
        positions: dict[tuple[str, int], int] = {}
        while self._landing:
            landing, committable = self._landing[0]
            if landing is not None and not (wait or landing.done()):
                break
            if landing is not None:
                landing.result()
            self._landing.popleft()
            positions.update(committable)
        return positions

    def _taken_landings(self) -> list[Report]:
        """The landings reported so far; the list itself stays, since pending delivery callbacks append to it."""
        landings = self._landings[:]
        self._landings.clear()
        return landings

    def _land(self, landings: list[Report], written: Sequence[ResolvedWrites] = ()) -> None:
        """Land acknowledged records of resolved topics; a failure costs only the repair of a raced log tail.

        The reports are read only if another writer may have raced this one. A batch with a failed write is left
        out: it is written again after the rewind, and lands then.
        """
        if not landings and not written:
            return
        try:
            if not self.tails.may_have_raced():
                return
            reports = landings + [report for writes in written if not writes.batch.errors
                                  for report in writes.paired()]
            copies = self.tails.land([landing_of(*report) for report in reports])
        except (RedisError, KafkaException) as exc:
            log.warning("link %s: could not land %d records in %s (%s): a raced key may keep a losing last "
                        "record", self.id, len(landings) + sum(len(w.reports) for w in written),
                        self.link.destination, exc)
            return
        if copies:
            self.stats.repaired(copies)
            log.info("link %s: re-appended %d winning records in %s after a raced write", self.id, copies,
                     self.link.destination)

    def _watch_progress(self, progressed: bool) -> None:
        """Report the link unhealthy while the destination acknowledges nothing of what is in flight."""
        now = time.monotonic()
        if progressed:
            self._progress_at = now
            self.stats.progressed()
        elif self._tracker.in_flight == 0:
            self._progress_at = now
            self._healthy_if_caught_up()
        elif now - self._progress_at > STALL_S:
            self._report_stall()

    def _healthy_if_caught_up(self) -> None:
        """An idle link that failed is healthy again once it has read to the end of every partition it holds.

        Idle turns alone prove nothing: right after a restart the consumer has fetched nothing yet, and
        a link restarted for a Redis or destination that still fails would report itself healthy until
        its first batch failed again. Caught up, nothing is left that needs what failed.
        """
        if not self.stats.is_healthy and self._caught_up():
            self.stats.progressed()

    def _caught_up(self) -> bool:
        """Whether the consumer holds its assignment and read every partition in it to its end since it was
        assigned or last rewound.

        By the consumer's end-of-partition events: its position stays unknown until it hands out a record,
        which a partition read to its end before the restart never does.
        """
        return not self._subscribed or self._unread == set()

    def _recover_from(self, failures: list) -> None:
        """A write failed for good: rewind to the last committed offsets and write again (at-least-once)."""
        err, _msg = failures[0]
        log.warning("link %s: %d writes to %s failed (%s); rewinding to committed offsets", self.id,
                    len(failures), self.link.destination, err)
        self._check_timestamps_of(failures)
        self._refusals.note(failures)
        self.producer.flush(30)
        self._tracker.clear()
        self._written.clear()
        self._rewind_to_committed()
        if isinstance(err, KafkaError) and err.fatal():
            self.producer = Producer(self._producer_config())

    def _check_timestamps_of(self, failures: list) -> None:
        """Check record timestamps from now on in the topics whose destination refused one, so that the records
        read again after the rewind that it refuses are dead-lettered instead of being written and refused again."""
        sources = {plan.destination: topic for topic, plan in self._plans.items()}
        for err, msg in failures:
            source = sources.get(msg.topic())
            if err.code() == KafkaError.INVALID_TIMESTAMP and source is not None and \
                    source not in self._timestamps_checked:
                self._timestamps_checked.add(source)
                log.warning("link %s: %s refused a record timestamp in %s; checking timestamps of %s from now on",
                            self.id, self.link.destination, msg.topic(), source)

    def _rewind_to_committed(self) -> None:
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for tp in self.consumer.committed(assignment, timeout=30):
            self._seek(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else 0)

    def _seek(self, topic: str, partition: int, offset: int) -> None:
        """Read a partition again from `offset`: not read to its end until its next end-of-partition event."""
        self.consumer.seek(TopicPartition(topic, partition, offset))
        if self._unread is not None:
            self._unread.add((topic, partition))

    def _apply_plans(self, plans: dict[str, TopicPlan]) -> None:
        self._plans = plans
        self._conflict_topics = {}
        self._destinations = {topic: (plan.destination, plan.destination_partitions == plan.source_partitions)
                              for topic, plan in plans.items()}
        self._max_bytes = {topic: plan.max_record_bytes for topic, plan in plans.items()}
        self._compacted = frozenset(topic for topic, plan in plans.items() if plan.compacted)
        self._windows = {topic: plan.timestamp_window for topic, plan in plans.items() if plan.timestamp_window}
        smallest = min(self._max_bytes.values(), default=PRODUCER_MAX_BYTES)
        if self.producer is not None and smallest < self._batch_bytes:
            self.producer.flush(60)
            self.producer = Producer(self._producer_config())

    def _subscribe(self, force: bool = False) -> None:
        topics = sorted(self._plans)
        if topics == self._subscribed and not force:
            return
        self._subscribed = topics
        if topics:
            self.consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
            log.info("link %s: replicating %d topics: %s", self.id, len(topics), ", ".join(topics))
        else:
            self.consumer.unsubscribe()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.exactly_once:
            # Side by side: each init waits on its transaction coordinator, and one after another they held a
            # starting worker back by seconds. The offsets are read after every init: an init completes the
            # previous holder's open transaction, whose stored offset must be read.
            producers = self._committer.map(self._transactional_producer, partitions)
            for tp, producer in zip(partitions, producers):
                self._txn_producers[(tp.topic, tp.partition)] = producer
            stored = self._offsets.load()
            for tp in partitions:
                tp.offset = stored.get((tp.topic, tp.partition), OFFSET_BEGINNING)
        consumer.assign(partitions)
        self._unread = {(tp.topic, tp.partition) for tp in partitions}
        log.info("link %s: assigned %s", self.id, _describe(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._revoked.update((tp.topic, tp.partition) for tp in partitions)
        if self.exactly_once:
            self._settle_commits()  # the next owner starts from what they stored
            for tp in partitions:
                self._txn_producers.pop((tp.topic, tp.partition), None)
            unsettled = 0
        else:
            unsettled = self.producer.flush(60)
            try:
                self._commit_synchronously()
            except (KafkaException, KafkaError) as exc:
                # The group may have moved on (a broker restart): the partitions are re-read from the last commit.
                log.warning("link %s: commit on revocation failed: %s", self.id, exc)
        # Revocation takes every partition at once (eager assignment): with every record written landed, the
        # partitions' next owners write them alone.
        if not unsettled:
            self.tails.release()
        consumer.unassign()
        self._unread = None
        log.info("link %s: revoked %s", self.id, _describe(partitions))

    def _commit_synchronously(self) -> None:
        """Land and commit everything acknowledged so far, waiting for both (revocation, a graceful stop)."""
        self._queue_acknowledged()
        positions = self._landed(wait=True)
        self._tracker.clear()
        self._written.clear()
        if positions:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in positions.items()],
                                 asynchronous=False)

    def _transactional_producer(self, tp: TopicPartition) -> Producer:
        """A producer whose init fences every earlier holder of this partition (a zombie worker)."""
        producer = Producer({**self._producer_config(),
                             "transactional.id": f"amity.{self.id}.{tp.topic}.{tp.partition}",
                             "transaction.timeout.ms": self.settings.transaction_timeout_ms,
                             "message.timeout.ms": self.settings.transaction_timeout_ms})
        producer.init_transactions(self.settings.transaction_timeout_ms / 1000)
        return producer

    def _measure_lag(self) -> None:
        assignment = self.consumer.assignment()
        lag: dict[str, int] = defaultdict(int)
        for tp in self.consumer.position(assignment) if assignment else []:
            high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high and tp.offset >= 0:
                lag[tp.topic] += max(high[1] - tp.offset, 0)
        self.stats.lag(dict(lag))

    def _teardown(self, graceful: bool) -> None:
        if self.producer is not None:
            self.producer.flush(30 if graceful else 1)
        if self.consumer is not None:
            try:
                if graceful and self.exactly_once:
                    self._settle_commits()
                elif graceful:
                    self._commit_synchronously()
                self.consumer.close()
            except (KafkaException, KafkaError, RuntimeError) as exc:
                log.warning("link %s: closing the consumer: %s", self.id, exc)
        self.consumer = None
        self.producer = None
        self._txn_producers.clear()
        self._committing.clear()
        self._tracker.clear()
        self._written.clear()
        self._landings.clear()
        self._landing.clear()

    def _consumer_config(self) -> dict:
        return {
            **self.source.kafka_config(),
            "group.id": f"amity-mirror.{self.id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,  # how a link that failed knows it is caught up (_caught_up)
            # Aborted transactions in the source must never reach another region.
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 50,
            # A partition's fetch brings up to 8 MiB instead of 1: at 1 MiB an exactly-once link waited for
            # records over half its time, between fetch round trips (docs/benchmarks.md).
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
            "queued.max.messages.kbytes": 65536,
            **READER_CONFIG,
            "partition.assignment.strategy": "range",
            # A worker killed without leaving holds its partitions until the session times out (45 s by default).
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
        }

    def _producer_config(self) -> dict:
        self._batch_bytes = batch_bytes(min(self._max_bytes.values(), default=PRODUCER_MAX_BYTES))
        return {
            **self.destination.kafka_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": self.settings.linger_ms,
            "batch.size": self._batch_bytes,
            "compression.type": self.settings.compression,
            "message.max.bytes": PRODUCER_MAX_BYTES,
            # Never give up on a record: a destination that is down stalls the link, it does not lose data.
            "message.timeout.ms": 0,
            "queue.buffering.max.messages": 500_000,
            # The Java clients' partitioner, so a key lands in the same partition in every region.
            "partitioner": "murmur2_random",
        }


def batch_bytes(smallest: int) -> int:
    """The producer's batch.size under the smallest max.message.bytes of the link's destination topics.

    A broker refuses a whole batch larger than the topic takes, and librdkafka does not split it: the batch
    would be retried for good. Up to 1 MB, with room for the batch's framing; a record larger than the batch
    (never larger than its topic takes: the router dead-letters those) goes alone.
    """
    return max(min(1_000_000, smallest - 1024), min(16_384, smallest // 2), 1)


def dead_letter(msg: Message, source: str, reason: str, detail: str) -> tuple[bytes | None, bytes | None, list]:
    """The key, value and headers a record is dead-lettered with: its own, with the reason, unless too large.

    A key, value or set of headers over DLQ_VALUE_LIMIT is left out and its size said instead, so that a dead
    letter always fits the dead-letter topic, whatever the source broker took (a compressed batch can carry a
    record larger than any limit) and the record can never block its partition.
    """
    copied = list(msg.headers() or ())
    headers = [("amity-dlq-reason", reason.encode()), ("amity-dlq-detail", detail[:512].encode()),
               ("amity-dlq-source", f"{source}/{msg.topic()}/{msg.partition()}/{msg.offset()}".encode())]
    key, value = _bounded("key", msg.key(), headers), _bounded("value", msg.value(), headers)
    copied_bytes = sum(len(name) + len(data or b"") for name, data in copied)
    if copied_bytes > DLQ_VALUE_LIMIT:
        headers.append(("amity-dlq-headers-omitted", f"{len(copied)} headers, {copied_bytes} bytes".encode()))
        copied = []
    return key, value, copied + headers


def _bounded(part: str, data: bytes | None, headers: list) -> bytes | None:
    """`data`, or None with its size said in `headers` when it is over DLQ_VALUE_LIMIT."""
    if data is not None and len(data) > DLQ_VALUE_LIMIT:
        headers.append((f"amity-dlq-{part}-omitted", str(len(data)).encode()))
        return None
    return data


def _landed(delivered, land, state_key: bytes, rank: bytes, err, msg) -> None:
    """The delivery report of a resolved record (bound per record with functools.partial): reported as any record's
    is, and kept for landing once it is acknowledged. A partial over a function, not a callback object: one frame
    per record to build and one to report, where the object took one and three. The report is kept as it is: its
    Landing is read from it only if another writer may have raced this one (Tails.may_have_raced)."""
    if delivered is not None:
        delivered(err, msg)
    if err is None:
        land((state_key, rank, msg))


def _settled(delivered, settle, err, msg) -> None:
    """The delivery report of a suspect written alone: reported as any record's is, then settled."""
    if delivered is not None:
        delivered(err, msg)
    settle(err, msg)


def _next_positions(records: list[Message]) -> dict[tuple[str, int], int]:
    positions: dict[tuple[str, int], int] = {}
    for msg in records:
        positions[(msg.topic(), msg.partition())] = msg.offset() + 1
    return positions


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
