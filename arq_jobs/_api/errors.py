"""The JSON API's error answers: `{"error": <code>, "message": ..., **details}`, never a stack trace.

They apply to the routes `install()` adds (through `JobsRoute`) and, app-wide, to this package's own
errors (`JobsError`, e.g. raised by `ApiJobsDep` in a user's route); a user's other errors and 404s stay
theirs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException

from arq_jobs._api.body import cap_body
from arq_jobs._errors import (
    AuthenticationError,
    ConflictError,
    InvalidScheduleError,
    InvalidWorkflowError,
    JobsError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QueueFullError,
    RedisUnavailableError,
    TaskInputError,
    TooManyStreamsError,
    UnknownQueueError,
)
from arq_jobs._redis_errors import describe_redis_error

log = logging.getLogger(__name__)

TASK_ROUTE_EXTRA = "x-task"
BATCH_ROUTE_EXTRA = "x-batch"  # with TASK_ROUTE_EXTRA: the task's batch enqueue route

STATUS_BY_ERROR: dict[type[JobsError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    PayloadTooLargeError: 413,
    QueueFullError: 429,
    RedisUnavailableError: 503,
    TooManyStreamsError: 503,
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


def jobs_error(exc: JobsError) -> JSONResponse:
    status = next((s for cls, s in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 400)
    response = error_response(status, exc.code, str(exc), **exc.details())
    response.headers.update(exc.headers())
    return response


async def on_jobs_error(request: Request, exc: Exception) -> JSONResponse:
    """The app-wide handler of this package's errors (installed by `install()`)."""
    assert isinstance(exc, JobsError)
    return jobs_error(exc)


def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
    task = route_task(request)
    if task is None:
        return error_response(422, "validation_error", f"invalid request: {where}", detail=errors)
    return error_response(
        422, "validation_error", f"invalid request for task {task!r}: {where}", task=task, detail=errors
    )


def redis_error(request: Request, exc: RedisError) -> JSONResponse:
    """Redis unreachable, or refusing the request (out of memory, read-only replica, ...)."""
    log.warning("redis error during %s %s: %s", request.method, request.url.path, describe_redis_error(exc))
    return jobs_error(RedisUnavailableError(exc))


def http_error(exc: StarletteHTTPException) -> JSONResponse:
    code = "not_found" if exc.status_code == 404 else "http_error"
    response = error_response(exc.status_code, code, str(exc.detail), detail=exc.detail)
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def error_answer(request: Request, exc: Exception) -> JSONResponse:
    """The JSON answer to any error raised while serving one of the API's routes."""
    if isinstance(exc, JobsError):
        return jobs_error(exc)
    if isinstance(exc, RequestValidationError):
        return validation_error(request, exc)
    if isinstance(exc, RedisError):
        return redis_error(request, exc)
    if isinstance(exc, StarletteHTTPException):
        return http_error(exc)
    log.exception("error during %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


API_ERRORS = (JobsError, RequestValidationError, RedisError, StarletteHTTPException)


def app_handles(request: Request, exc: Exception) -> bool:
    """Whether the app has an exception handler of its own for `exc`, which is none of the errors the
    API answers itself (e.g. an error of a dependency the app passed to `install()`)."""
    if isinstance(exc, API_ERRORS):
        return False
    handlers: dict[Any, Any] = getattr(request.app, "exception_handlers", {})
    handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    return handler is not None and handler not in (on_jobs_error, answer_any_error)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def answering_json(handler: Handler) -> Handler:
    """`handler` with its errors answered by `error_answer`, but those the app has a handler of its own
    for (and that are not one of the API's)."""

    async def answer_json(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            if app_handles(request, exc):
                raise
            return error_answer(request, exc)

    return answer_json


class JobsRoute(APIRoute):
    """An APIRoute whose errors are answered by `error_answer`; an error the app has a handler of its
    own for (and that is not one of the API's) goes to that handler."""

    def get_route_handler(self) -> Handler:
        return answering_json(super().get_route_handler())


def capping_body(route: APIRoute, handler: Handler) -> Handler:
    """`handler` behind the request body limit of `route` (arq_jobs._api.body): 413 before parsing."""
    extra = route.openapi_extra or {}
    task = extra.get(TASK_ROUTE_EXTRA)
    task = task if isinstance(task, str) else None
    batch = extra.get(BATCH_ROUTE_EXTRA) is True
    # a body parsed by a dependency of its own (the dashboard's form token) counts too
    reads_body = route.body_field is not None or bool((route.methods or set()) & {"POST", "PUT", "PATCH"})

    async def capped(request: Request) -> Response:
        await cap_body(request, task=task, reads_body=reads_body, batch=batch)
        return await handler(request)

    return capped


class ApiRoute(JobsRoute):
    """The routes `install()` adds (the metrics label them with the prefix they are mounted under);
    their request bodies are capped (arq_jobs._api.body)."""

    def get_route_handler(self) -> Handler:
        return answering_json(capping_body(self, APIRoute.get_route_handler(self)))


async def answer_any_error(request: Request, exc: Exception) -> Response:
    return error_answer(request, exc)


def json_errors(app: FastAPI) -> None:
    """Answer every error of `app` as the job API answers its own: unknown routes (404), wrong methods
    (405), invalid requests (422), Redis outages (503) and anything unexpected (500, no stack trace),
    each as `{"error": <code>, "message": ...}`. For an app that is mostly the job API; `install()`
    alone leaves the app's other answers as they are."""
    for error in (*API_ERRORS, Exception):
        app.add_exception_handler(error, answer_any_error)
