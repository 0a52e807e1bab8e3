"""FastAPI dependencies: the coordinator context and the caller's identity."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from amity.coordinator.auth import authenticate
from amity.coordinator.context import Coordinator

bearer = HTTPBearer(auto_error=False, description="The coordinator's API token (AMITY_API_TOKEN)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def coordinator(request: Request) -> Coordinator:
    return request.app.state.coordinator


CoordinatorDep = Annotated[Coordinator, Depends(coordinator)]


def writer(c: CoordinatorDep, credentials: Credentials) -> str:
    """The subject of the caller's token; every mutating endpoint requires one (when tokens are configured)."""
    return authenticate(credentials.credentials if credentials else None, c.settings.tokens())


def reader(c: CoordinatorDep, credentials: Credentials) -> None:
    """Read endpoints are open unless AMITY_READ_REQUIRES_TOKEN is set."""
    if c.settings.read_requires_token:
        authenticate(credentials.credentials if credentials else None, c.settings.tokens())


Actor = Annotated[str, Depends(writer)]
Reader = Depends(reader)
