"""Every error answered as a Problem: one line a person can act on, plus field errors."""

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from amity.coordinator.errors import CoordinatorError, UnauthorizedError
from amity.coordinator.schemas.problems import FieldError, Problem

log = logging.getLogger(__name__)
SHOWN_ERRORS = 3


def install(app: FastAPI) -> None:
    app.add_exception_handler(CoordinatorError, _coordinator_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(ValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RedisError, _store_unavailable)


def problem(status: int, detail: str, errors: Sequence[FieldError] = (), headers: dict | None = None) -> JSONResponse:
    body = Problem(detail=detail, errors=list(errors)).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


async def _coordinator_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CoordinatorError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, UnauthorizedError) else None
    return problem(exc.status, str(exc), headers=headers)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    errors = [FieldError(location=_location(e["loc"]), message=_message(e)) for e in exc.errors()]
    shown = "; ".join(f"{e.location}: {e.message}" if e.location else e.message for e in errors[:SHOWN_ERRORS])
    more = f" (and {len(errors) - SHOWN_ERRORS} more)" if len(errors) > SHOWN_ERRORS else ""
    return problem(422, f"invalid request: {shown}{more}", errors)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


async def _store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The coordinator's own Redis failed mid-request: 503, so clients retry, instead of a bare 500."""
    log.warning("%s %s: the coordinator's Redis failed: %s", request.method, request.url.path, exc)
    return problem(503, f"the coordinator's state store (Redis, AMITY_REDIS_URL) did not answer: {exc}; "
                        f"retry once it is back", headers={"Retry-After": "5"})


def _location(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'cannot parse it')})"
    if kind == "extra_forbidden":
        return "unknown field; remove it (the API reference at /docs lists the fields)"
    if kind == "missing":
        return "required"
    return str(error["msg"]).removeprefix("Value error, ")
