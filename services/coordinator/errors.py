"""The coordinator's errors, each with the HTTP status it answers with.

Route handlers and stores raise these; one exception handler turns them into
`{"detail": message}` with `status`, so messages are written once, for people.
"""

from amity.errors import AmityError


class CoordinatorError(AmityError):
    status = 400


class NotFoundError(CoordinatorError):
    status = 404


class AlreadyExistsError(CoordinatorError):
    status = 409


class InUseError(CoordinatorError):
    """Refused because something else depends on it (a region used by links)."""

    status = 409


class ChangedMeanwhileError(CoordinatorError):
    """Refused because what the request was based on changed while it was checked: read it again and retry."""

    status = 409


class InvalidRequestError(CoordinatorError):
    """Well-formed, but not acceptable with what the coordinator already holds."""

    status = 422


class UnreachableError(CoordinatorError):
    """A region's Kafka or Redis did not answer the reachability check."""

    status = 422


class UnauthorizedError(CoordinatorError):
    status = 401
