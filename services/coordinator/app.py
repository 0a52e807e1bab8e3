"""The coordinator's FastAPI app: `create_app(settings)` builds it; its lifespan opens and closes clients."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from amity import __version__
from amity.coordinator import http_errors
from amity.coordinator.context import Coordinator
from amity.coordinator.limits import BodyLimit
from amity.coordinator.metrics import Metrics, RequestMetrics
from amity.coordinator.monitor import Monitor
from amity.coordinator.routes import failover, health, links, regions, rules, stats, topology, ui, workers
from amity.coordinator.settings import CoordinatorSettings

log = logging.getLogger(__name__)


def create_app(settings: CoordinatorSettings) -> FastAPI:
    """A coordinator app for these settings; its clients open when the app starts serving."""
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = Coordinator.open(settings, metrics)
        app.state.coordinator = c
        background = Monitor(c)
        background.start()
        if not settings.tokens():
            log.warning("no API token is set (AMITY_API_TOKEN): every mutating endpoint is open to anyone "
                        "who can reach %s:%s", settings.host, settings.port)
        try:
            yield
        finally:
            await background.stop()
            await c.close()

    app = FastAPI(title="Amity coordinator", version=__version__, lifespan=lifespan,
                  description="Control plane of Amity: regions, links, conflict rules, mirror workers, stats and "
                              "consumer-group failover.")
    http_errors.install(app)
    for router in (health.router, regions.router, links.router, rules.router, stats.router, topology.router,
                   workers.router, failover.router):
        app.include_router(router)
    app.include_router(ui.router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app
