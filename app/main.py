"""`create_app()`: the FastAPI app, its lifespan (which owns the ArqRedis pool) and its error answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics
from app.dashboard import build_router as build_dashboard
from app.deps import AppState
from app.routes import (
    deadletters,
    events,
    health,
    jobs,
    queues,
    reports,
    schedules,
    tasks,
    workers,
    workflows,
)
from app.routes.jobs import TASK_ROUTE_EXTRA
from jobcore.batching import ScriptBatch
from jobcore.config import Settings, load_settings
from jobcore.connection import create_arq
from jobcore.errors import (
    ConflictError,
    InvalidScheduleError,
    InvalidWorkflowError,
    JobsError,
    NotFoundError,
    TaskInputError,
    UnknownQueueError,
)
from jobcore.registry import TaskRegistry, load_registry
from jobcore.tracing import configure_tracing, instrument_app, shutdown_tracing

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[JobsError], int] = {
    NotFoundError: 404,
    ConflictError: 409,
    InvalidScheduleError: 422,
    InvalidWorkflowError: 422,
    TaskInputError: 422,
    UnknownQueueError: 422,
}


def error_response(status: int, code: str, message: str, /, **details: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **details}, status_code=status)


def route_task(request: Request) -> str | None:
    """The task a per-task enqueue route serves, if the request matched one."""
    extra = getattr(request.scope.get("route"), "openapi_extra", None) or {}
    task = extra.get(TASK_ROUTE_EXTRA)
    return task if isinstance(task, str) else None


async def on_jobs_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, JobsError)
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    return error_response(status, exc.code, str(exc), **exc.details())


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    task = route_task(request)
    if task is None:
        return error_response(422, "validation_error", f"invalid request: {where}", detail=errors)
    return error_response(
        422, "validation_error", f"invalid request for task {task!r}: {where}", task=task, detail=errors
    )


async def on_redis_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis unreachable, or refusing the request (out of memory, read-only replica, ...)."""
    log.warning("redis error during %s %s: %r", request.method, request.url.path, exc)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        problem = "Redis is unreachable"
    else:
        problem = f"Redis refused the request ({type(exc).__name__})"
    return error_response(
        503, "redis_unavailable", f"{problem}; the request was not completed. Try again shortly."
    )


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = "not_found" if exc.status_code == 404 else "http_error"
    response = error_response(exc.status_code, code, str(exc.detail), detail=exc.detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response(500, "internal_error", "internal server error")


def create_app(settings: Settings | None = None, registry: TaskRegistry | None = None) -> FastAPI:
    """Build the app; `uvicorn app.main:create_app --factory` or `python -m app` serve it."""
    settings = settings or load_settings()
    if registry is None:
        registry = load_registry(settings)
    else:
        registry.check(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        arq = create_arq(settings)
        batch = ScriptBatch(arq)
        try:
            yield {"app_state": AppState(settings=settings, registry=registry, arq=arq, batch=batch)}
        finally:
            await batch.drain()
            await arq.aclose()
            await arq.connection_pool.disconnect()
            await asyncio.to_thread(shutdown_tracing)

    app = FastAPI(
        title="arq-jobs",
        summary="Typed background jobs on ARQ: enqueue over HTTP, poll for status, progress and results.",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,  # DELETE /jobs/ is a missing id (404), not a redirect to GET /jobs
    )
    app.include_router(jobs.build_router(registry, settings))
    app.include_router(events.router)
    metrics.install(app)
    configure_tracing(settings, "jobs-api")
    instrument_app(app)
    app.include_router(queues.router)
    app.include_router(workers.router)
    app.include_router(deadletters.router)
    app.include_router(tasks.router)
    app.include_router(schedules.router)
    app.include_router(health.router)
    app.include_router(reports.router)
    app.include_router(workflows.router)
    if settings.dashboard_enabled:
        app.include_router(build_dashboard(settings))
    app.add_exception_handler(JobsError, on_jobs_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(RedisError, on_redis_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    return app
