"""Request middleware: request id, one structured log line per request, Prometheus metrics."""

from __future__ import annotations

import time
import uuid

import structlog
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

log = structlog.get_logger("seamline.http")


class Metrics:
    """Per-app registry, so several apps (tests) in one process do not collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "seamline_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "seamline_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.merges = Counter("seamline_profile_merges_total", "Profiles merged", ["reason"], registry=self.registry)


class _Observe:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per
    request, which showed in collection profiles): request id, metrics, one log line."""

    def __init__(self, app, metrics: Metrics):  # noqa: ANN001
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None) or uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message) -> None:  # noqa: ANN001
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            # The matched route's template (/v1/customers/{customer_id}): low-cardinality metrics;
            # as documented, without a convertor ({agent_id:int} is {agent_id}).
            matched = scope.get("route")
            route = getattr(matched, "path_format", None) or getattr(matched, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            log.info("request", method=method, path=scope["path"], route=route, status=status,
                     duration_ms=round(elapsed * 1000, 2))
            structlog.contextvars.unbind_contextvars("request_id")


def install_observability(app: FastAPI, metrics: Metrics) -> None:
    app.add_middleware(_Observe, metrics=metrics)

    @app.get("/metrics", include_in_schema=False)
    def _metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
