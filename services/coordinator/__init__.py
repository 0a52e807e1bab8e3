"""The control plane: regions, links, conflict rules, worker assignment and stats, over HTTP.

`create_app(settings)` in `amity.coordinator.app` builds the FastAPI app; its
lifespan opens the Redis client and starts the background monitor, so nothing
connects at import time.
"""
