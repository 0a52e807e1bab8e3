"""/v1/failover and /v1/failback: move a consumer group between registered regions, along their links.

The operation is `amity.failover.failover`, the one the CLI runs directly: it
blocks on Kafka and Redis for seconds, so it runs in a worker thread, with the
regions and links the coordinator holds.
"""

import asyncio

from fastapi import APIRouter

from amity.coordinator.deps import Actor, CoordinatorDep
from amity.coordinator.errors import CoordinatorError, InvalidRequestError
from amity.coordinator.schemas.failover import FailoverResult, GroupMove
from amity.coordinator.schemas.problems import PROBLEM_RESPONSES, Problem
from amity.failover import (
    DestinationBehind, Direction, FailoverRefused, FailoverRequest, GroupActive, NoLink, RegionUnreachable,
    TranslationStateMissing, UnknownGroup, failover,
)

UNAVAILABLE = {503: {"model": Problem, "description": "A region the move needs does not answer"}}
router = APIRouter(prefix="/v1", tags=["failover"], responses={**PROBLEM_RESPONSES, **UNAVAILABLE})

REFUSAL_STATUS: dict[type[FailoverRefused], int] = {
    GroupActive: 409, UnknownGroup: 404, NoLink: 409, TranslationStateMissing: 409, DestinationBehind: 409,
    RegionUnreachable: 503,
}
# The operation's messages name the CLI's flags; through the API they are body fields.
FLAG_FIELDS = {"--allow-behind": '"allow_behind": true', "--scan": '"scan": true'}


class MoveRefused(CoordinatorError):
    """A refused move (nothing was committed) as a problem response, with the status its reason calls for."""

    def __init__(self, refusal: FailoverRefused) -> None:
        message = str(refusal)
        for flag, field in FLAG_FIELDS.items():
            message = message.replace(flag, field)
        super().__init__(message)
        self.status = REFUSAL_STATUS.get(type(refusal), 409)


@router.post("/failover")
async def failover_group(move: GroupMove, c: CoordinatorDep, _: Actor) -> FailoverResult:
    """Move the group from `source` to `destination`: translate its offsets on `topic` exactly and commit them on
    the link's copy of `topic` (unless `dry_run`). Refused, with nothing committed, while the group has members in
    `destination`."""
    return await _move(c, move.request(Direction.FAILOVER))


@router.post("/failback")
async def failback_group(move: GroupMove, c: CoordinatorDep, _: Actor) -> FailoverResult:
    """Move the group back from `destination` to `source` once `source` is up again (the same body as the
    failover). Refused while `source` lacks records the group processed in `destination`, unless `allow_behind`."""
    return await _move(c, move.request(Direction.FAILBACK))


async def _move(c: CoordinatorDep, request: FailoverRequest) -> FailoverResult:
    regions = await c.regions.all()
    unknown = [name for name in (request.source, request.destination) if name not in regions]
    if unknown:
        raise InvalidRequestError(f"regions {unknown} are not registered; register them first (amity region add)")
    links = [link.as_link() for link in (await c.links.all()).values()]
    try:
        return await asyncio.to_thread(failover, request, regions, links)
    except FailoverRefused as refusal:
        raise MoveRefused(refusal) from None
