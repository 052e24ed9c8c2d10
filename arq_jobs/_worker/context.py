"""The worker's shared resources: built in on_startup, closed in on_shutdown, read by tasks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import Any

import httpx

from arq_jobs import _arq
from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._limits.worker import WorkerLimits
from arq_jobs._logs import configure_logging
from arq_jobs._netguard import guarded_transport
from arq_jobs._redis_memory import warn_if_evicting
from arq_jobs._schedules.scheduler import Scheduler
from arq_jobs._tasks.context import Resources
from arq_jobs._tasks.registry import TaskRegistry
from arq_jobs._tracing import configure_tracing, shutdown_tracing
from arq_jobs._worker.arq_worker import adopt
from arq_jobs._worker.runtime import Runtime

SETTINGS_KEY = "arq_jobs.settings"  # our keys on the worker ctx, out of the way of the user's
REGISTRY_KEY = "arq_jobs.registry"
RESOURCES_KEY = "arq_jobs.resources"
RUNTIME_KEY = "arq_jobs.runtime"
# the settings as configured: a pool's own (SETTINGS_KEY) name its queue as `queue_name`, which must
# not become the queue of the jobs the worker enqueues (a task without a queue goes to the default)
CLIENT_SETTINGS_KEY = "arq_jobs.client_settings"
SCHEDULER_KEY = "arq_jobs.scheduler"

log = logging.getLogger(__name__)


def worker_id() -> str:
    """host:pid plus a short random part, unique across restarts that reuse a pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def startup(ctx: dict[str, Any]) -> None:
    """ARQ on_startup: configure logging and build the shared HTTP client (guarded: no request reaches
    a loopback, private or other internal address unless JOBS_WEBHOOK_ALLOWED_HOSTS opens it)."""
    settings: Settings = ctx[SETTINGS_KEY]
    configure_logging(settings.log_level, settings.log_format)
    _arq.quiet_job_lines()
    http = httpx.AsyncClient(
        transport=guarded_transport(settings.webhook_allowed_hosts),
        timeout=httpx.Timeout(settings.http_timeout_s),
        follow_redirects=False,
        headers={"user-agent": "arq-jobs-worker"},
    )
    configure_tracing(settings, "jobs-worker")
    resources = Resources(settings=settings, redis=ctx["redis"], http=http, worker_id=worker_id(), shared=ctx)
    ctx[RESOURCES_KEY] = resources
    registry: TaskRegistry = ctx[REGISTRY_KEY]
    runtime = Runtime(
        resources,
        registry_version=registry.version,
        tasks=registry.input_fingerprints(),
        limits=WorkerLimits.of(registry, resources.keys),
    )
    runtime.worker = adopt(ctx, runtime)
    await runtime.start()
    ctx[RUNTIME_KEY] = runtime
    client_settings: Settings = ctx.get(CLIENT_SETTINGS_KEY, settings)
    # no version guard: the worker enqueues its own tasks (schedules, workflow steps it advances); no
    # back-pressure: those jobs are work already accepted, never to be lost
    runtime.client = JobClient(
        resources.redis,
        client_settings,
        registry,
        batch=runtime.batch,
        guard=False,
        replica_ack=False,
        back_pressure=False,
    )
    scheduler = Scheduler.for_worker(runtime.client, runtime.health)
    if scheduler is not None:
        scheduler.start()
        ctx[SCHEDULER_KEY] = scheduler
    await warn_if_evicting(resources.redis, f"worker {resources.worker_id}", settings.redis_timeout_s)
    log.info("worker %s started", resources.worker_id)


async def shutdown(ctx: dict[str, Any]) -> None:
    """ARQ on_shutdown (after running jobs finished or were put back): close what startup opened."""
    scheduler: Scheduler | None = ctx.pop(SCHEDULER_KEY, None)
    if scheduler is not None:
        await scheduler.stop()
    runtime: Runtime | None = ctx.pop(RUNTIME_KEY, None)
    if runtime is not None:
        await runtime.stop()
    resources: Resources | None = ctx.pop(RESOURCES_KEY, None)
    if resources is not None:
        await resources.http.aclose()
        log.info("worker %s stopped", resources.worker_id)
    await asyncio.to_thread(shutdown_tracing)


def get_runtime(ctx: dict[str, Any]) -> Runtime:
    """The lease/cancel bookkeeping startup started, from ARQ's ctx."""
    runtime: Runtime = ctx[RUNTIME_KEY]
    return runtime


def get_resources(ctx: dict[str, Any]) -> Resources:
    """The resources startup built, from ARQ's ctx."""
    resources: Resources = ctx[RESOURCES_KEY]
    return resources
