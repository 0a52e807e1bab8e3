"""Prometheus metrics of one coordinator app, in its own registry (apps in one process never clash)."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amity.coordinator.schemas.regions import RegionHealth, Status
from amity.coordinator.schemas.stats import LinkStatsView
from amity.coordinator.schemas.topology import LinkEdge, LinkState


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("amity_coordinator_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("amity_coordinator_request_seconds", "Time to answer HTTP requests",
                                 ["method", "route"], registry=r)
        self.region_up = Gauge("amity_region_up", "1 when the region's Kafka and Redis answered the last check",
                               ["region"], registry=r)
        self.workers_live = Gauge("amity_workers_live", "Workers that sent a heartbeat in time", registry=r)
        self.links = Gauge("amity_links", "Links by state", ["state"], registry=r)
        self.generation = Gauge("amity_assignment_generation", "Generation of the worker assignment", registry=r)
        self.rules_version = Gauge("amity_rules_version", "Version of the conflict rule set", registry=r)
        self.replicated = Gauge("amity_link_replicated_records", "Records replicated per link, in total",
                                ["link"], registry=r)
        self.throughput = Gauge("amity_link_records_per_second", "Records per second over the last minute",
                                ["link"], registry=r)
        self.lag = Gauge("amity_link_lag_records", "Records behind the source, per link", ["link"], registry=r)

    def regions(self, health: dict[str, RegionHealth]) -> None:
        self.region_up.clear()
        for name, status in health.items():
            self.region_up.labels(name).set(1 if status.status is Status.UP else 0)

    def link_states(self, edges: list[LinkEdge]) -> None:
        """How many links are in each topology state; every state is exported, zero included, for the alerts."""
        for state in LinkState:
            self.links.labels(state.value).set(sum(edge.state is state for edge in edges))

    def link_stats(self, views: list[LinkStatsView]) -> None:
        for gauge in (self.replicated, self.throughput, self.lag):
            gauge.clear()
        for view in views:
            self.replicated.labels(view.link).set(view.total.replicated)
            self.throughput.labels(view.link).set(view.throughput.records_per_s)
            self.lag.labels(view.link).set(view.lag_records)


class RequestMetrics:
    """Counts and times every HTTP request by route template (not raw path, which would explode labels)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
