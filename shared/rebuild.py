"""Rebuilding a region's version state from its topics, after the Redis holding it was lost.

Resolving against an empty state would take every stale version for new, so
resolvers fail closed (`StateLost`) until this has run. The rebuild removes
the epoch first (every resolver and stamper of the state stops), replays
every record of the topics through the same compare-and-set the resolver
uses, in batches, so each key ends with the highest version its topic holds,
tombstones included, and the context merges every version seen. Only then
does it write a new epoch; resolvers call `resume()` to continue.

Each batch is also landed (amity.tails) in log order once loaded, so the
rebuilt state knows every key's last record and where its winner sits, and a
key whose last record is a losing version (a race cut short by the loss) gets
its winner appended again. Records of plain clients are not landed, as in
normal operation: a repair appending one would append it without a header, and
its next first hop would stamp it as a new write.

What it cannot recover: tombstones compaction already removed from the
topic, and the first-hop stamps of plain clients' records when the memos were
lost with the state (such records then rank by timestamp, see amity.stored;
a link that had not yet passed one stamps it anew).
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import redis

from amity.clock import TimestampRangeError
from amity.headers import MalformedProvenance
from amity.ordering import MissingOrderingField
from amity.policies import InvalidVersion, rank_bytes
from amity.regions import Region
from amity.rules import ConflictRule, Policy, RuleSet
from amity.state import Claim, StateSettings, VersionState, may_expire, reads_of
from amity.stored import RefusedAtFirstHop, own_provenance, read_to_end, version_of, with_first_hop_stamps
from amity.tails import Landing, Tails

BATCH = 5000


@dataclass
class RebuildReport:
    epoch: str = ""
    records: int = 0
    claims: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> records left out
    repaired: int = 0  # winners appended again because a losing version was a key's last record


def rebuild(region: Region, topics: Iterable[str], rules: RuleSet, *, client: redis.Redis | None = None,
            settings: StateSettings | None = None, progress: Callable[[str], None] = lambda message: None,
            timeout_s: float = 600.0) -> RebuildReport:
    """Rebuild `region`'s version state for `topics` from what the topics hold now."""
    client = client or redis.Redis.from_url(region.redis)
    state = VersionState(client, settings)
    tails = Tails(region, client, settings, full=True)
    report = RebuildReport()
    state.begin_rebuild()
    try:
        for topic in topics:
            rule = rules.rule_for(topic)
            if rule is None or rule.policy is Policy.NONE:
                report.skipped["not-resolved-topic"] += 1
                continue
            progress(f"reading {topic} in {region.name}")
            _rebuild_topic(region, topic, rule, state, tails, report, timeout_s)
    finally:
        tails.close()
    tails.state.mark_rebuilt()
    report.epoch = state.finish_rebuild()
    progress(f"state of {region.name} rebuilt: {report.claims} versions, epoch {report.epoch}")
    return report


def _rebuild_topic(region: Region, topic: str, rule: ConflictRule, state: VersionState, tails: Tails,
                   report: RebuildReport, timeout_s: float) -> None:
    """Load and land every record of one topic, in batches, in log order."""
    pending: list[tuple[Claim, Landing | None]] = []
    messages = read_to_end(region.kafka_config(), topic, timeout_s)
    for msg, stamp in with_first_hop_stamps(messages, state, topic):
        report.records += 1
        key = msg.key()
        if key is None:
            report.skipped["keyless"] += 1
            continue
        try:
            provenance = own_provenance(msg)
            version = version_of(rule, region.name, msg, provenance, stamp)
            rank = rank_bytes(rule, version)
        except (MalformedProvenance, MissingOrderingField, TimestampRangeError, InvalidVersion,
                RefusedAtFirstHop) as exc:
            report.skipped[type(exc).__name__] += 1
            continue
        ttl = state.settings.tombstone_ttl_ms if version.deleted and may_expire(rule) else 0
        state_key = state.state_key(topic, key)
        # A plain client's record is not landed, as in normal operation: landed, it could become a winner copy,
        # and a repair would append it without a header, to be stamped as a new write at its next first hop.
        landing = None if provenance is None else Landing(state_key, rank, key, topic, msg.partition(), msg.offset())
        pending.append((Claim(state_key, rank, version.hlc, version.vector, ttl, reads_of(rule)),
                        landing))
        if len(pending) >= BATCH:
            report.claims += _load(state, tails, pending, report)
    report.claims += _load(state, tails, pending, report)


def _load(state: VersionState, tails: Tails, pending: list[tuple[Claim, Landing | None]],
          report: RebuildReport) -> int:
    count = len(pending)
    state.load([claim for claim, _ in pending])
    report.repaired += tails.land([landing for _, landing in pending if landing is not None])
    pending.clear()
    return count
