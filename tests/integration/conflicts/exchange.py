"""What a mirror link does with conflict resolution, reduced to one pass over a topic, for these tests.

The mirror worker runs this in its link loop; here it runs once, on demand, so
a test controls exactly which versions reach which region and when.
"""

from collections import Counter

import redis
from confluent_kafka import Producer

from amity.headers import Provenance, decode, encode, find_provenance, with_provenance
from amity.regions import Region
from amity.resolver import Incoming, Outcome, Resolver, Stamper
from amity.rules import RuleSet
from amity.state import Engine, Operations, StateSettings, VersionState
from tests.support.kafka import read_all


class CountingRedis(redis.Redis):
    """A real client that counts the commands it sends: the round trips a batch costs."""

    @staticmethod
    def one_call_of(state: VersionState, command: str) -> dict[str, int]:
        """What `sent` holds after one call of the state's operation whose module command is `command`: that
        command where the state ran on the module, a script's EVALSHA where it ran on the scripts."""
        assert command in Operations.COMMANDS
        return {command if state.engine is Engine.MODULE else "EVALSHA": 1}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: Counter[str] = Counter()

    def execute_command(self, *args, **options):
        self.sent[str(args[0]).upper()] += 1
        return super().execute_command(*args, **options)


def incoming(msg, read_in: str) -> Incoming:
    """The record as the router hands it over: first hop without a header, else its decoded provenance."""
    raw = find_provenance(msg.headers())
    if raw is None:
        return Incoming.first_hop(msg, read_in)
    return Incoming.of(msg, decode(raw))


def header(record: Incoming, path: tuple[str, ...]) -> bytes:
    return encode(Provenance(record.origin, record.topic, record.partition, record.offset, record.timestamp_ms, path,
                             record.hlc, record.vector))


class Link:
    """One direction between two regions, stamping in the source and resolving in the destination."""

    def __init__(self, source: Region, destination: Region, rules: RuleSet, settings: StateSettings) -> None:
        self.source, self.destination = source, destination
        self.stamper = Stamper(redis.Redis.from_url(source.redis), rules, source.name, settings=settings)
        self.resolver = Resolver(redis.Redis.from_url(destination.redis), rules, destination.name, settings=settings)
        self.outcomes: Counter[str] = Counter()

    def replicate(self, topic: str) -> list[Outcome]:
        """Carry every record of the source topic that originated there (one hop: a pair of regions)."""
        records = [(msg, incoming(msg, self.source.name)) for msg in read_all(self.source.bootstrap, topic)]
        records = [(msg, record) for msg, record in records if record.origin == self.source.name]
        stamped = self.stamper.stamp([record for _, record in records])
        ready = [(msg, record) for (msg, _), record in zip(records, stamped) if isinstance(record, Incoming)]
        outcomes = self.resolver.resolve([record for _, record in ready])
        producer = Producer({"bootstrap.servers": self.destination.bootstrap, "enable.idempotence": True})
        for (msg, record), outcome in zip(ready, outcomes):
            self.outcomes[str(outcome.verdict)] += 1
            if outcome.writes:
                path = (self.source.name, self.destination.name)
                producer.produce(topic, key=msg.key(), value=msg.value(), timestamp=record.timestamp_ms,
                                 headers=with_provenance(msg.headers(), header(record, path)))
        assert producer.flush(30) == 0
        return outcomes
