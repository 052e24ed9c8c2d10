"""`install(app)`: the job API, dashboard, `/metrics` and health routes added to an existing FastAPI
app, with the ArqRedis pool run inside the app's lifespan (around the app's own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.params import Depends
from fastapi.routing import APIRoute
from uvicorn.importer import ImportFromStringError, import_from_string

from arq_jobs._api import metrics
from arq_jobs._api.auth import is_loopback
from arq_jobs._api.body import BODY_LIMITS, BodyLimits
from arq_jobs._api.deps import STATE_KEY, AppState, key_cache
from arq_jobs._api.errors import ApiRoute, on_jobs_error
from arq_jobs._api.hosts import trusted_host
from arq_jobs._api.routes import (
    deadletters,
    events,
    health,
    jobs,
    queues,
    schedules,
    stats,
    tasks,
    workers,
    workflows,
)
from arq_jobs._config import LogLevel, Settings, load_settings
from arq_jobs._connection import create_arq
from arq_jobs._dashboard import build_router as build_dashboard
from arq_jobs._dashboard.routing import DashboardRoute
from arq_jobs._errors import JobsError
from arq_jobs._jobs.event_hub import EventHub
from arq_jobs._logs import LogFormat, configure_logging
from arq_jobs._redis_memory import warn_if_evicting
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._tasks.registry import TaskRegistry, load_registry
from arq_jobs._tracing import configure_tracing, instrument_app, shutdown_tracing
from arq_jobs._version_guard import VersionGuard
from arq_jobs._worker_registry import WorkerRegistry

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[Mapping[str, Any] | None]]
INSTALLATION = "arq_jobs_installation"  # the app.state attribute that holds an app's Installation


@dataclass(slots=True)
class Installation:
    """What `install()` put into an app: its settings, tasks and prefix, and how its lifespan connects
    to Redis (`arq_jobs.testing` swaps that for an in-memory Redis)."""

    settings: Settings
    registry: TaskRegistry
    prefix: str
    connect: Callable[[Settings], ArqRedis] = create_arq


def installation(app: FastAPI) -> Installation:
    """The Installation of `app`; LookupError when `install()` was not called on it."""
    found = getattr(app.state, INSTALLATION, None)
    if not isinstance(found, Installation):
        raise LookupError("arq_jobs is not installed in this app: call arq_jobs.fastapi.install(app)")
    return found


def install(
    app: FastAPI,
    *,
    prefix: str = "",
    settings: Settings | None = None,
    task_packages: Sequence[str] | None = None,
    dashboard: bool = True,
    dependencies: Sequence[Depends] = (),
) -> None:
    """Add the job routes (`POST {prefix}/jobs/{task}`, `GET {prefix}/jobs/{id}`, ...), the dashboard,
    `/metrics` and the health routes to `app`, all under `prefix` and behind `dependencies`, and run
    the Redis pool in the app's lifespan (started before the app's own lifespan, closed after it).

    `settings` default to the `JOBS_*` environment; `task_packages` (default `JOBS_TASK_PACKAGES`)
    name the packages whose modules define the tasks. Call it once, before the app starts."""
    settings = (settings or load_settings()).with_task_packages(task_packages)
    mount(
        app,
        settings,
        load_registry(settings),
        prefix=prefix,
        dashboard=dashboard,
        dependencies=dependencies,
    )


def mount(
    app: FastAPI,
    settings: Settings,
    registry: TaskRegistry,
    *,
    prefix: str = "",
    dashboard: bool = True,
    dependencies: Sequence[Depends] = (),
) -> None:
    """`install()` with a registry already loaded (tests build one from a list of tasks)."""
    if getattr(app.state, INSTALLATION, None) is not None:
        raise RuntimeError("arq_jobs is already installed in this app")
    if app.middleware_stack is not None:
        raise RuntimeError("install() must be called before the app starts (it adds routes and middleware)")
    registry.check(settings)
    prefix = normalized_prefix(prefix)
    found = Installation(settings, registry, prefix)
    setattr(app.state, INSTALLATION, found)
    setattr(app.state, BODY_LIMITS, BodyLimits.of(settings, registry))
    app.router.lifespan_context = around(app.router.lifespan_context, found)  # type: ignore[assignment]
    routers = [
        jobs.build_router(registry, settings),
        events.router,
        metrics.router,
        queues.router,
        workers.router,
        deadletters.router,
        stats.router,
        tasks.router,
        schedules.router,
        health.router,
        workflows.router,
    ]
    if dashboard and settings.dashboard_enabled:
        routers.append(build_dashboard(settings))
    for router in routers:
        app.include_router(
            router,
            prefix=prefix,
            dependencies=[Depends(trusted_host), *dependencies],
            generate_unique_id_function=operation_id,
        )
    metrics.instrument(app, prefix, own=(ApiRoute, DashboardRoute))
    configure_tracing(settings, "jobs-api")
    instrument_app(app)
    app.add_exception_handler(JobsError, on_jobs_error)


def operation_id(route: APIRoute) -> str:
    """An operation's OpenAPI `operationId`: its route's name (`enqueue_noop`, `get_job`, ...), short and
    stable for generated clients, instead of FastAPI's `enqueue_noop_jobs_noop_post`."""
    return route.name


def normalized_prefix(prefix: str) -> str:
    """`""` or `/path` without a trailing slash (what `include_router` wants)."""
    prefix = prefix.strip()
    if prefix in ("", "/"):
        return ""
    if not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError(f"prefix {prefix!r} must start with '/' and not end with one, like '/jobs-api'")
    return prefix


def around(user: Lifespan, found: Installation) -> Lifespan:
    """The app's lifespan inside ours: our pool opens first and closes last; both states are kept."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        arq = found.connect(found.settings)
        batch = ScriptBatch(arq)
        events = EventHub.for_settings(arq, found.settings)
        state = AppState(
            settings=found.settings,
            registry=found.registry,
            arq=arq,
            batch=batch,
            prefix=found.prefix,
            guard=VersionGuard(WorkerRegistry(arq, found.settings)),
            events=events,
            key_cache=key_cache(found.settings, arq),
        )
        # in the background: the app starts at once even while Redis is down or slow
        policy_check = asyncio.create_task(warn_if_evicting(arq, "API", found.settings.redis_timeout_s))
        try:
            async with user(app) as user_state:
                yield {**(user_state or {}), STATE_KEY: state}
        finally:
            policy_check.cancel()
            await asyncio.gather(policy_check, return_exceptions=True)
            await events.stop()
            await batch.drain()
            await arq.aclose()
            await arq.connection_pool.disconnect()
            await asyncio.to_thread(shutdown_tracing)

    return lifespan


def serve(app: FastAPI | str, *, settings: Settings | None = None, factory: bool = False) -> None:
    """Serve `app` with uvicorn on `JOBS_API_HOST`:`JOBS_API_PORT` in `JOBS_API_WORKERS` processes,
    logging as the workers do (`JOBS_LOG_LEVEL`, `JOBS_LOG_FORMAT`, `JOBS_ACCESS_LOG`); SIGTERM lets
    requests finish for 5 s.

    `app` is the app, or its import string (`"myproject.main:app"`; with `factory=True` a function
    that makes it, `"app.main:create_app"`), which several processes need: each imports the app itself
    (reading its settings from the environment)."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.auth == "off" and not is_loopback(settings.api_host):
        raise SystemExit(
            f"refusing to serve on {settings.api_host} with JOBS_AUTH=off: without authentication the "
            "API listens on a loopback address only (JOBS_API_HOST=127.0.0.1); create API keys "
            "(arq-jobs keys create) or set JOBS_ADMIN_TOKEN and keep JOBS_AUTH=keys"
        )
    several = settings.api_workers > 1
    if several and not isinstance(app, str):
        raise SystemExit(
            f"JOBS_API_WORKERS={settings.api_workers}: each API process imports the app itself, so pass "
            'serve() the app\'s import string instead of the app: serve("myproject.main:app"), or '
            'serve("myproject.main:create_app", factory=True) for a function that makes it'
        )
    if several:
        # made once here: a bad setting stops start-up with its one line, where each process failing
        # on it would be started again by uvicorn, forever
        try:
            found = import_from_string(app)
        except ImportFromStringError as error:
            raise SystemExit(f"cannot import the app: {error}") from None
        if factory:
            found()
    uvicorn.run(
        app,
        factory=factory,
        workers=settings.api_workers,
        proxy_headers=settings.auth == "keys",  # without keys, only direct loopback clients are served
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        # each process of several is a fresh interpreter: uvicorn applies this dict in each
        log_config=process_logging(settings) if several else None,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
    )


def process_logging(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict that sets up our logging (configure_logging) in the process
    that applies it: its one handler is made by `configured_handler`."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "arq_jobs": {
                "()": configured_handler,
                "log_level": settings.log_level,
                "log_format": settings.log_format,
            }
        },
        "root": {"handlers": ["arq_jobs"], "level": settings.log_level},
    }


def configured_handler(log_level: LogLevel, log_format: LogFormat) -> logging.Handler:
    """configure_logging, then the root handler it installed (dictConfig puts it back on the root)."""
    configure_logging(log_level, log_format)
    return logging.getLogger().handlers[0]
