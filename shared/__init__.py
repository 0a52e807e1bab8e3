"""Amity: active-active multi-region orchestration for Apache Kafka.

The `amity` package is the library both services import: provenance headers,
clocks, conflict policies, version state, topology. The services live in
`amity.mirror` (data plane) and `amity.coordinator` (control plane).
"""

__version__ = "0.1.0"
