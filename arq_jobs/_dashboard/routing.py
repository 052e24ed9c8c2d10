"""`DashboardRoute`: every dashboard answer is HTML with the same security headers, errors included —
a 404 page for an unknown job, a readable 409 when a job has already ended, a 401 that makes the
browser ask for the admin token, never a JSON body or a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException

from arq_jobs._api.errors import app_handles, capping_body
from arq_jobs._dashboard.flash import Flash, answer
from arq_jobs._dashboard.security import ForbiddenError
from arq_jobs._dashboard.templating import bare_chrome
from arq_jobs._errors import (
    AuthenticationError,
    ConflictError,
    JobsError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    QueueFullError,
)

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",  # htmx runs with allowEval off: no inline code, no eval
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def describe(exc: Exception) -> tuple[int, str, dict[str, str]]:
    """The status, message and headers the dashboard answers an error with."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail), dict(exc.headers or {})
    if isinstance(exc, AuthenticationError):
        return 401, str(exc), exc.headers()
    if isinstance(exc, ForbiddenError | PermissionDeniedError):
        return 403, str(exc), {}
    if isinstance(exc, NotFoundError):
        return 404, str(exc), {}
    if isinstance(exc, ConflictError):
        return 409, str(exc), {}
    if isinstance(exc, PayloadTooLargeError):
        return 413, str(exc), {}
    if isinstance(exc, QueueFullError):
        return 429, str(exc), exc.headers()
    if isinstance(exc, JobsError):
        return 422, str(exc), {}
    if isinstance(exc, RequestValidationError):
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return 422, f"invalid request: {where}", {}
    if isinstance(exc, RedisError):
        return 503, "Redis is unreachable or refused the request; try again shortly.", {}
    log.exception("dashboard error")
    return 500, "internal error: the dashboard could not answer (see the API's log)", {}


class DashboardRoute(APIRoute):
    """An APIRoute whose errors are dashboard pages (or flash fragments for htmx); its request bodies
    (forms) are capped as the API's are (arq_jobs._api.body)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = capping_body(self, super().get_route_handler())

        async def answer_html(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                if app_handles(request, exc):
                    raise
                status, message, headers = describe(exc)
                response = answer(
                    request,
                    bare_chrome(request),
                    Flash("error", message),
                    status_code=status,
                    title=HTTPStatus(status).phrase,
                    headers=headers,
                )
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return answer_html
