"""Failover API models: which group to move between which registered regions; the answer is the move's report.

The coordinator holds the regions and the links, so a request names regions
only, and the link check is always on: the direct mode's `check_links` and
`remote_topic` (for when the links are unknown) have no place here.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from amity.failover import Direction, FailoverReport, FailoverRequest
from amity.regions import RegionName
from amity.stats import TopicName

GroupId = Annotated[str, Field(pattern=r"^[ -~]{1,255}$", description="A consumer group id (printable ASCII)")]

FailoverResult = FailoverReport


class GroupMove(BaseModel):
    """The body of both /v1/failover and /v1/failback: failback names the same `source` and `destination`."""

    model_config = ConfigDict(extra="forbid")

    group: GroupId
    topic: TopicName = Field(description="The topic as the group reads it in `source`")
    source: RegionName = Field(description="A: the region the group normally reads in")
    destination: RegionName = Field(description="B: the region a failover moves it to (a failback moves it back)")
    dry_run: bool = Field(default=False, description="Answer with the plan; commit nothing")
    allow_behind: bool = Field(default=False, description="Commit even if the region the group moves to lacks "
                               "records it already processed (they are delivered again when they arrive)")
    scan: bool = Field(default=False, description="Without an offset index, read the topics from their start (slow "
                       "on long topics)")

    @model_validator(mode="after")
    def _two_regions(self) -> "GroupMove":
        if self.source == self.destination:
            raise ValueError(f"source and destination are both {self.source!r}: a group moves between two regions")
        return self

    def request(self, direction: Direction) -> FailoverRequest:
        """The operation's request, its link check on: the coordinator knows every link."""
        return FailoverRequest(direction=direction, check_links=True, **self.model_dump())
