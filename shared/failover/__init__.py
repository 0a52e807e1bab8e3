"""Failover: exact consumer-group offset translation between regions, failover and failback.

Entry points: `failover()` (one group, one topic, one move; what `amity
failover`, `amity failback` and a REST endpoint call), `Checkpointer`
(`amity checkpoint run`) and `ProcessedFilter` (for consumers that want no
re-delivery at all). docs/failover.md explains the design.
"""

from amity.failover.errors import (
    DestinationBehind, FailoverRefused, GroupActive, NoLink, RegionUnreachable, TranslationStateMissing, UnknownGroup,
)
from amity.failover.filter import ProcessedFilter
from amity.failover.operation import Direction, FailoverReport, FailoverRequest, PartitionPlan, failover

__all__ = [
    "DestinationBehind", "Direction", "FailoverRefused", "FailoverReport", "FailoverRequest", "GroupActive", "NoLink",
    "PartitionPlan", "ProcessedFilter", "RegionUnreachable", "TranslationStateMissing", "UnknownGroup", "failover",
]
