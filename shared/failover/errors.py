"""Why a failover or failback is refused: each error says what is wrong and what to do about it."""

from amity.errors import AmityError


class FailoverRefused(AmityError):
    """A failover or failback that Amity will not carry out; nothing was committed."""


class GroupActive(FailoverRefused):
    """The group has members in the region it would be moved to: their commits would race ours."""


class UnknownGroup(FailoverRefused):
    """The group has no committed offset on the topic in the region it is moved from."""


class NoLink(FailoverRefused):
    """No link carries the topic between the two regions, so the destination has no copy of it."""


class TranslationStateMissing(FailoverRefused):
    """Neither a checkpoint nor an offset index exists to translate from."""


class DestinationBehind(FailoverRefused):
    """The destination has not received every record the group already processed in the source."""


class RegionUnreachable(FailoverRefused):
    """A region that must answer (the destination, or the source of a failback) does not."""
