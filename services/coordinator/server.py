"""Serve the coordinator with uvicorn: the one entry point that reads settings from the environment."""

import uvicorn

from amity.coordinator.app import create_app
from amity.coordinator.settings import CoordinatorSettings


def serve(settings: CoordinatorSettings, log_level: str = "info") -> None:
    """Run until interrupted; SIGTERM and Ctrl-C shut down through the app's lifespan."""
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
                proxy_headers=False, server_header=False)
