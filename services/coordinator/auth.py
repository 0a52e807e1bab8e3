"""Bearer tokens: who is calling, checked in constant time."""

import secrets

from pydantic import SecretStr

from amity.coordinator.errors import UnauthorizedError

ANONYMOUS = "anonymous"


def authenticate(token: str | None, tokens: dict[str, SecretStr]) -> str:
    """The subject whose token this is; `anonymous` when no tokens are configured (local use)."""
    if not tokens:
        return ANONYMOUS
    if not token:
        raise UnauthorizedError("this endpoint needs the header `Authorization: Bearer <token>` "
                           "with the coordinator's API token (AMITY_API_TOKEN)")
    given = token.encode()
    subject = None
    for name, secret in sorted(tokens.items()):
        # Compare with every token, so timing tells nothing about which one (if any) almost matched.
        if secrets.compare_digest(given, secret.get_secret_value().encode()):
            subject = name
    if subject is None:
        raise UnauthorizedError("the bearer token is not one the coordinator accepts; check AMITY_API_TOKEN")
    return subject
