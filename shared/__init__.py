"""Amity: active-active multi-region orchestration for Apache Kafka.

The `amity` package is the library both services import: provenance headers,
clocks, conflict policies, version state, topology. The services live in
`amity.mirror` (data plane) and `amity.coordinator` (control plane).
"""

__version__ = "0.1.0"

__all__ = ["Producer", "ResolvedView"]


def __getattr__(name: str) -> object:
    """`amity.Producer` and `amity.ResolvedView`, imported on first use: `import amity` stays light."""
    if name == "Producer":
        from amity.producer import Producer

        return Producer
    if name == "ResolvedView":
        from amity.view import ResolvedView

        return ResolvedView
    raise AttributeError(f"module 'amity' has no attribute {name!r}")
