"""The API's Prometheus metrics: HTTP requests per route template (never per job id), and queue
gauges read from Redis when scraped. `GET /metrics`."""

from __future__ import annotations

import time
from functools import cache

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import ApiRoute
from arq_jobs._api.schemas import AUTH_ERRORS
from arq_jobs._auth.scopes import METRICS_READ

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
QUEUE_STATES = ("pending", "scheduled", "running", "retrying", "succeeded", "failed", "cancelled")


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "http_requests_total", "HTTP requests answered.", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to answer (until the response starts, for streams).",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.jobs = Gauge("queue_jobs", "Jobs in a queue by state.", ["queue", "state"], registry=r)
        self.oldest = Gauge(
            "queue_oldest_pending_age_seconds",
            "How long the oldest pending job has been due.",
            ["queue"],
            registry=r,
        )
        self.dead = Gauge("queue_dead_letters", "Dead letters of a queue's jobs.", ["queue"], registry=r)
        self.workers = Gauge("queue_live_workers", "Live workers serving a queue.", ["queue"], registry=r)
        self.live_workers = Gauge("workers_live", "Live workers.", registry=r)


class MetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(
        self, app: ASGIApp, metrics: ApiMetrics, prefix: str = "", own: tuple[type, ...] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        # the route classes of install()'s routes, mounted under `prefix` (which their path lacks when
        # this FastAPI keeps included routes as declared)
        self.prefix = "" if included_routes_carry_prefix() else prefix
        self.own = own

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_and_time(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                self.metrics.latency.labels(scope["method"], self.route_of(scope)).observe(
                    time.perf_counter() - start
                )
            await send(message)

        try:
            await self.app(scope, receive, send_and_time)
        finally:
            self.metrics.requests.labels(scope["method"], self.route_of(scope), str(status)).inc()

    def route_of(self, scope: Scope) -> str:
        """The matched route's path template (`/jobs/{job_id}`), or `unmatched`."""
        route = scope.get("route")
        path = getattr(route, "path", None)
        if not isinstance(path, str):
            return "unmatched"
        return self.prefix + path if isinstance(route, self.own) else path


@cache
def included_routes_carry_prefix() -> bool:
    """Whether this FastAPI's `include_router(router, prefix=...)` puts the prefix into the path of
    each route it includes (FastAPI 0.165 keeps the routes as declared, without it)."""
    probe = FastAPI()
    included = APIRouter()
    included.add_api_route("/route", included_routes_carry_prefix)
    probe.include_router(included, prefix="/prefix")
    return any(getattr(route, "path", None) == "/prefix/route" for route in probe.routes)


router = APIRouter(route_class=ApiRoute, tags=["health"])


@router.get("/metrics", response_class=Response, dependencies=[requires(METRICS_READ)], responses=AUTH_ERRORS)
async def metrics(request: Request, jobs: ApiJobsDep) -> Response:
    """Prometheus text format: HTTP metrics, and queue gauges read from Redis now."""
    found: ApiMetrics = request.app.state.arq_jobs_metrics
    alive = [w for w in await jobs.workers() if w.state == "alive"]
    queues = await jobs.queues(alive)
    for gauge in (found.jobs, found.oldest, found.dead, found.workers):
        gauge.clear()
    for queue in queues:
        for state in QUEUE_STATES:
            found.jobs.labels(queue.name, state).set(getattr(queue, state))
        found.oldest.labels(queue.name).set(queue.oldest_pending_age_s or 0)
        found.dead.labels(queue.name).set(queue.dead_lettered)
        found.workers.labels(queue.name).set(queue.workers)
    found.live_workers.set(len(alive))
    return Response(generate_latest(found.registry), media_type=CONTENT_TYPE_LATEST)


def instrument(app: FastAPI, prefix: str = "", own: tuple[type, ...] = ()) -> None:
    """Count and time `app`'s requests (the route `router` serves them); `own` routes were included
    under `prefix`."""
    app.state.arq_jobs_metrics = ApiMetrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.arq_jobs_metrics, prefix=prefix, own=own)
