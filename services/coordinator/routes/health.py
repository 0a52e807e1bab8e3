"""Liveness, readiness and Prometheus metrics: open to everyone, for probes and scrapers."""

import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from amity.coordinator.deps import CoordinatorDep
from amity.coordinator.schemas.health import Liveness, Readiness
from amity.coordinator.schemas.regions import DependencyStatus
from amity.regions import mask_url_password

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Liveness:
    """The process answers; says nothing about its dependencies."""
    return Liveness()


@router.get("/readyz", responses={503: {"model": Readiness, "description": "A dependency is down"}})
async def readyz(c: CoordinatorDep) -> JSONResponse:
    """Ready when the coordinator's own Redis answers."""
    redis = await _redis_status(c)
    body = Readiness(status="ready" if redis.ok else "not-ready", dependencies={"redis": redis})
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if redis.ok else 503)


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def metrics(c: CoordinatorDep) -> Response:
    return Response(generate_latest(c.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def _redis_status(c: CoordinatorDep) -> DependencyStatus:
    started = time.monotonic()
    try:
        await c.redis.ping()
    except (RedisError, OSError) as exc:
        where = mask_url_password(c.settings.redis_url)
        return DependencyStatus(ok=False, error=f"Redis at {where} does not answer: {exc}")
    return DependencyStatus(ok=True, latency_ms=round((time.monotonic() - started) * 1000, 1))
