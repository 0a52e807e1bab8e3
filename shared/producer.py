"""`amity.Producer`: a Kafka producer whose writes carry their version, stamped from the region's state.

Writes to topics with a conflict rule are stamped before they are sent: the
origin region, a hybrid timestamp above everything the region has seen for
the key, and the key's merged version vector incremented at the region. The
stamp and the advance of the key's causal context are one Redis script call
per `produce_batch`, serialised with every other stamper and resolver of the
region: two writes to one key never share a stamp, and a write made after
seeing a version always outranks it.

The key's held version advances only once Kafka has acknowledged the record
(in `poll` or `flush`, one Redis call for all acknowledgements since the last
one). A write that fails is therefore never the held version, which would make
the region refuse versions that no topic holds. A crash between acknowledgement
and that update leaves the held version behind the topic, never ahead: the
region may then accept a lower remote version into its log, which every
region's resolved view still orders below this one.

Each acknowledged write is also landed (amity.tails), in the same `poll` or
`flush`: where a mirror's or another producer's write raced this one into the
log, the winner is appended again so that it is the key's last record.
"""

import struct
import threading
from collections.abc import Callable, Sequence
from functools import partial

import confluent_kafka
import redis

from amity.clock import pack, wall_clock_ms
from amity.headers import encode_stamped, with_provenance
from amity.ordering import Headers
from amity.policies import Head, RankTemplate, rank_template
from amity.regions import Region
from amity.resolver import passing
from amity.rules import ConflictRule, Policy, RuleSet
from amity.state import Claims, StampRequests, StateSettings, VersionState, may_expire, reads_of, unpack_vector
from amity.tails import ANY_PARTITION, Landing, Tails, landing_of

# Stamped at produce time, a record's partition and offset are not known yet: the
# header says 0 and 0, and the path of one region marks it as not yet mirrored.
UNKNOWN_COORDINATE = 0

HeadersIn = Headers | dict[str, bytes | None]  # what confluent-kafka's produce takes
Record = tuple[bytes | None, bytes | None] | tuple[bytes | None, bytes | None, HeadersIn]
DeliveryCallback = Callable[[confluent_kafka.KafkaError | None, confluent_kafka.Message], None]
# A write's claim until Kafka acknowledges it, as `Claims.add` takes it: state hash, rank, hlc (8 bytes), packed
# vector, tombstone ttl, what the apply script reads.
Pending = tuple[bytes, bytes, bytes, bytes, int, int]
_HLC = struct.Struct(">Q")


class Producer:
    """Produces to one region, stamping writes to resolved topics (see the module docstring).

    Keyless records, and records of topics with no rule or policy none, are sent
    as they are: nothing resolves them. Call `poll` or `flush` regularly, as with
    any Kafka producer: delivery callbacks and the held-version update run there.
    """

    def __init__(self, region: Region, rules: RuleSet, config: dict | None = None, *,
                 client: redis.Redis | None = None, settings: StateSettings | None = None,
                 now_ms: Callable[[], int] = wall_clock_ms, expected_epoch: str | None = None) -> None:
        self.region = region.name
        self.rules = rules
        client = client or redis.Redis.from_url(region.redis)
        self.state = VersionState(client, settings, expected_epoch)
        self.tails = Tails(region, client, settings)
        self.kafka = confluent_kafka.Producer({
            **region.kafka_config(), "enable.idempotence": True, "acks": "all",
            # The Java clients' partitioner, as the mirror uses: a key lands in the same partition everywhere.
            "partitioner": "murmur2_random", **(config or {}),
        })
        self._now_ms = now_ms
        self._acknowledged: list[tuple[Pending, Landing]] = []
        self._lock = threading.Lock()

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, headers: HeadersIn = None,
                partition: int = -1, on_delivery: DeliveryCallback | None = None) -> None:
        """Stamp and send one record: one Redis call. Use `produce_batch` for many."""
        self.produce_batch(topic, [(key, value, headers)], partition, on_delivery)

    def produce_batch(self, topic: str, records: Sequence[Record], partition: int = -1,
                      on_delivery: DeliveryCallback | None = None) -> None:
        """Stamp every record with one Redis call, then send them in order.

        Raises MissingOrderingField (timestamp policy) before anything is
        stamped or sent when a write lacks its ordering field, and StateLost
        when the region's state was wiped.
        """
        rule = self.rules.rule_for(topic)
        now = self._now_ms()
        writes = [(r[0], r[1], _header_list(r[2]) if len(r) > 2 else []) for r in records]
        # The writes to stamp, by index, with their ordering fields (timestamp policy): all of them read before
        # anything is registered, stamped or sent.
        fields = {i: self._ordering_field(rule, now, value, headers)
                  for i, (key, value, headers) in enumerate(writes) if passing(rule, key) is None}
        if fields:  # the partitioner picks the partition: registered as a writer of any of them
            self.tails.register([(topic, ANY_PARTITION)])
        state_keys = [self.state.state_key(topic, writes[i][0]) for i in fields]
        requests, floor = StampRequests(), pack(now, 0)
        for state_key in state_keys:
            requests.add(state_key, floor)
        answer = self.state.stamp_batch(requests, self.region)
        stamps = iter(zip(state_keys, answer.hlcs, answer.vectors))
        templates: dict[tuple[bool, int | None], RankTemplate] = {}
        ttl = self.state.settings.tombstone_ttl_ms if may_expire(rule) else 0
        reads, path = reads_of(rule), (self.region,)
        for index, (key, value, headers) in enumerate(writes):
            if index not in fields:
                self._send(topic, key, value, headers, partition, 0, None, on_delivery)
                continue
            state, hlc, vector = next(stamps)
            stamp, deleted, field = _HLC.unpack(hlc)[0], value is None, fields[index]
            template = templates.get((deleted, field))
            if template is None:
                template = templates[deleted, field] = rank_template(rule, self.region, deleted, field)
            rank = template.fill(stamp, unpack_vector(vector) if template.kind is Head.DEPTH else ())
            header = encode_stamped(self.region, topic, UNKNOWN_COORDINATE, UNKNOWN_COORDINATE, now, path, stamp,
                                    vector)
            self._send(topic, key, value, with_provenance(headers, header), partition, now,
                       (state, rank, hlc, vector, ttl if deleted else 0, reads), on_delivery)

    def poll(self, timeout: float = 0) -> int:
        """Serve delivery callbacks, then advance the held versions of what Kafka acknowledged."""
        served = self.kafka.poll(timeout)
        self._apply_acknowledged()
        return served

    def flush(self, timeout: float = -1) -> int:
        """Wait for every record to be acknowledged (or fail); returns how many are still in flight."""
        remaining = self.kafka.flush(timeout)
        self._apply_acknowledged()
        return remaining

    def __len__(self) -> int:
        return len(self.kafka)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()
        self.tails.close()

    def _ordering_field(self, rule: ConflictRule, now: int, value: bytes | None, headers: Headers) -> int | None:
        if rule.policy is not Policy.TIMESTAMP or value is None:
            return None
        return rule.ordering_field.read(now, headers, value)

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: Headers, partition: int,
              timestamp: int, pending: Pending | None, on_delivery: DeliveryCallback | None) -> None:
        delivered = partial(self._delivered, pending, on_delivery)
        while True:
            try:
                self.kafka.produce(topic, value, key, partition, delivered, None, timestamp, headers)
                return
            except BufferError:
                self.poll(0.1)

    def _delivered(self, pending: Pending | None, on_delivery: DeliveryCallback | None,
                   err: confluent_kafka.KafkaError | None, msg: confluent_kafka.Message) -> None:
        if err is None and pending is not None:
            with self._lock:
                self._acknowledged.append((pending, landing_of(pending[0], pending[1], msg)))
        if on_delivery is not None:
            on_delivery(err, msg)

    def _apply_acknowledged(self) -> None:
        """Advance the held versions, then land the records; when either fails, the next `poll` or `flush` does both
        again (a claim applied twice is a duplicate, a record landed twice lands once), so none is left unlanded."""
        with self._lock:
            acknowledged, self._acknowledged = self._acknowledged, []
        claims = Claims()
        for pending, _ in acknowledged:
            claims.add(*pending)
        try:
            self.state.apply(claims)
            self.tails.land([landing for _, landing in acknowledged])
        except Exception:
            with self._lock:
                self._acknowledged[:0] = acknowledged
            raise


def _header_list(headers: HeadersIn) -> list[tuple[str, bytes | None]]:
    """The headers as a list of pairs: confluent-kafka also takes a dict, whose list() would be its names alone."""
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or ())
