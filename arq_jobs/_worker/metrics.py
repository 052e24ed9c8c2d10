"""A worker's Prometheus metrics, served on its own port (`JOBS_WORKER_METRICS_PORT`, off when 0).

Labels are task, queue and outcome only: never job ids or error text.
"""

from __future__ import annotations

import logging
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from arq_jobs._worker.outage import RedisHealth

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

# how an attempt can end (a job's being dead-lettered is counted apart: it is not an attempt's end)
OUTCOMES = ("succeeded", "failed", "retried", "cancelled")


class WorkerMetrics:
    """Counters and histograms of the attempts one worker process runs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["task", "queue"]
        self.started = Counter("jobs_started_total", "Attempts started.", labels, registry=self.registry)
        self.ended = {
            outcome: Counter(
                f"jobs_{outcome}_total", f"Attempts that ended {outcome}.", labels, registry=self.registry
            )
            for outcome in OUTCOMES
        }
        self.dead_lettered = Counter(
            "jobs_dead_lettered_total",
            "Jobs written to the dead-letter store.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "jobs_duration_seconds",
            "How long attempts ran, by outcome.",
            [*labels, "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.wait = Histogram(
            "jobs_wait_seconds",
            "From when a job was due (enqueued, scheduled time, or end of its backoff) to its start.",
            labels,
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.running = Gauge("jobs_running", "Attempts running now.", labels, registry=self.registry)
        self.redis_up = Gauge(
            "redis_up", "1 while the worker reaches Redis, 0 during an outage.", registry=self.registry
        )
        self.redis_outage = Gauge(
            "redis_outage_seconds",
            "How long the current Redis outage has lasted (0 when Redis is up).",
            registry=self.registry,
        )
        self.redis_up.set(1)
        self._server: WSGIServer | None = None
        self._thread: Thread | None = None

    def watch(self, health: RedisHealth) -> None:
        """Read the Redis gauges off `health` at each scrape."""
        self.redis_up.set_function(lambda: 1.0 if health.up else 0.0)
        self.redis_outage.set_function(lambda: health.outage_s)

    def serve(self, port: int) -> None:
        """Serve /metrics on `port` (all interfaces) from a thread."""
        self._server, self._thread = start_http_server(port, registry=self.registry)
        log.info("worker metrics on :%d/metrics", port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
