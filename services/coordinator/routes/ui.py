"""The live dashboard: its static files under /ui, and the server-sent events it draws from.

Both stay out of the OpenAPI schema: the page is not an API, and an event
stream never ends, which no schema-driven client expects.
"""

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from amity.coordinator.dashboard import Sampler, current_state, stream
from amity.coordinator.deps import CoordinatorDep, Reader
from amity.coordinator.errors import NotFoundError

router = APIRouter(include_in_schema=False)

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# The page loads nothing but its own files and its own event stream; inline code is refused too.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
SAMPLE_PERIOD_S = 1.0
STREAM_LIFETIME_S = 30.0


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui")
async def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/")


@router.get("/ui/")
async def index() -> Response:
    return _asset("index.html")


@router.get("/ui/{name}")
async def asset(name: str) -> Response:
    """Files of the ui folder by plain name; read per request, so a changed file shows on reload."""
    return _asset(name)


@router.get("/v1/events", dependencies=[Reader])
async def events(request: Request, c: CoordinatorDep,
                 since: Annotated[float | None, Query(ge=0, description="Only chart points after this time")] = None
                 ) -> StreamingResponse:
    """`hello` (state and chart series), then a `tick` per second (state and new points); `problem` while
    the coordinator cannot read its state. Ends after a while: clients reconnect with `since`."""
    sampler = getattr(request.app.state, "dashboard_sampler", None)
    if sampler is None:
        sampler = request.app.state.dashboard_sampler = Sampler(lambda: current_state(c), SAMPLE_PERIOD_S)
    return StreamingResponse(stream(sampler, since, STREAM_LIFETIME_S), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _asset(name: str) -> Response:
    suffix = name[name.rfind("."):] if "." in name else ""
    folder = resources.files("amity.coordinator") / "ui"
    path = folder / name
    if "/" in name or name.startswith(".") or suffix not in CONTENT_TYPES or not path.is_file():
        raise NotFoundError(f"the dashboard has no file {name!r}; open /ui/")
    return Response(path.read_bytes(), media_type=CONTENT_TYPES[suffix], headers=SECURITY_HEADERS)
