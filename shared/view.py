"""The resolved view of a topic in one region: per key, the version its conflict rule makes win.

Convergence is defined on this view, not on the raw log: regions hold the same
records in different orders, and a plain client's local write sits in its own
region's log before anything resolves it. Every region's view is the same once
every version has arrived everywhere.
"""

from collections import Counter
from dataclasses import dataclass

from amity.clock import TimestampRangeError
from amity.headers import MalformedProvenance
from amity.ordering import MissingOrderingField
from amity.policies import InvalidVersion, Version, rank_bytes
from amity.regions import Region
from amity.rules import ConflictRule, Policy
from amity.state import VersionState
from amity.stored import RefusedAtFirstHop, read_to_end, stored_version, with_first_hop_stamps

_UNORDERED = ConflictRule(topic=".*", policy="none")


@dataclass(frozen=True, slots=True)
class Resolved:
    """The winning record of one key."""

    value: bytes | None  # None: the key is deleted
    version: Version
    partition: int
    offset: int


class ResolvedView:
    """Reads one region's copy of a topic to its end and resolves every key.

    Without a rule (or under policy none) the last record of each key wins,
    as the log holds it. Records whose version cannot be read or ordered are
    left out and counted in `skipped` by reason. Given the region's version
    state, records written there by plain clients rank by the stamp their
    first hop gave them (amity.stored), as in every other region.
    """

    def __init__(self, region: Region, topic: str, rule: ConflictRule | None, *,
                 state: VersionState | None = None, timeout_s: float = 120.0) -> None:
        self.region = region
        self.topic = topic
        self.rule = rule or _UNORDERED
        self.state = state
        self.timeout_s = timeout_s
        self.skipped: Counter[str] = Counter()

    def read(self, include_deleted: bool = False) -> dict[bytes, Resolved]:
        """{key: winning record}; keys whose winner is a tombstone only when `include_deleted`."""
        self.skipped.clear()
        winners: dict[bytes, Resolved] = {}
        ranks: dict[bytes, bytes] = {}  # each winner's rank_bytes: bytewise order is the policy's order
        ranked = self.rule.policy is not Policy.NONE
        messages = read_to_end(self.region.kafka_config(), self.topic, self.timeout_s)
        for msg, stamp in with_first_hop_stamps(messages, self.state, self.topic):
            key = msg.key()
            if key is None:
                self.skipped["keyless"] += 1
                continue
            try:
                version = stored_version(self.rule, self.region.name, msg, stamp)
                rank = rank_bytes(self.rule, version) if ranked else b""  # a version it cannot rank is skipped
            except (MalformedProvenance, MissingOrderingField, TimestampRangeError, InvalidVersion,
                    RefusedAtFirstHop) as exc:
                self.skipped[type(exc).__name__] += 1
                continue
            if not ranked or key not in ranks or rank > ranks[key]:  # policy none: the last record wins
                winners[key] = Resolved(msg.value(), version, msg.partition(), msg.offset())
                ranks[key] = rank
        if include_deleted:
            return winners
        return {key: record for key, record in winners.items() if not record.version.deleted}

