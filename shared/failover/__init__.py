"""Failover: exact consumer-group offset translation between regions, failover and failback.

Entry points: `failover()` (one group, one topic, one move; what `amity
failover`, `amity failback` and a REST endpoint call), and `Checkpointer`
(`amity checkpoint run`). docs/failover.md explains the design.
"""

from amity.failover.errors import (
    DestinationBehind, FailoverRefused, GroupActive, NoLink, RegionUnreachable, TranslationStateMissing, UnknownGroup,
)
from amity.failover.operation import Direction, FailoverReport, FailoverRequest, PartitionPlan, failover

__all__ = [
    "DestinationBehind", "Direction", "FailoverRefused", "FailoverReport", "FailoverRequest", "GroupActive", "NoLink",
    "PartitionPlan", "RegionUnreachable", "TranslationStateMissing", "UnknownGroup", "failover",
]
