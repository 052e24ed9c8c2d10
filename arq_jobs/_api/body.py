"""Request body limits of the API's and the dashboard's routes (`ApiRoute`, `DashboardRoute`): a body over
JOBS_MAX_REQUEST_BYTES, or over the `max_input_bytes` of the task a route enqueues, or a batch enqueue's
over JOBS_MAX_BATCH_REQUEST_BYTES, is refused with PayloadTooLargeError (413 `payload_too_large`) before
anything parses it. (Each input of a batch is held to its task's own limit once parsed: 422.)

A declared Content-Length over the limit is refused at once, without reading. Otherwise (no
Content-Length, a chunked body, or one that says less than it sends) a route that reads its body gets it
read here, counting, and refused as soon as the count passes the limit; the body read is kept on the
request, where FastAPI takes it from. Starlette's own RequestBodyLimitMiddleware answers in plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from arq_jobs._config import Settings
from arq_jobs._errors import PayloadTooLargeError
from arq_jobs._tasks.registry import TaskRegistry

BODY_LIMITS = "arq_jobs_body_limits"  # the app.state attribute install() sets


BATCH_DEFAULT: int = Settings.model_fields["max_batch_request_bytes"].default


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The most bytes a request body may have: `default`, or a task's own lower limit on its enqueue
    route (`tasks`), or `batch` on a batch enqueue route."""

    default: int
    tasks: Mapping[str, int] = field(default_factory=dict)
    batch: int = BATCH_DEFAULT

    @classmethod
    def of(cls, settings: Settings, registry: TaskRegistry) -> BodyLimits:
        default = settings.max_request_bytes
        return cls(
            default,
            {
                task.name: task.max_input_bytes
                for task in registry
                if task.max_input_bytes is not None and task.max_input_bytes < default
            },
            settings.max_batch_request_bytes,
        )

    def limit(self, task: str | None) -> int:
        """The limit of one job's body (`task`'s enqueue route) or of any other route's."""
        return self.default if task is None else self.tasks.get(task, self.default)


FALLBACK = BodyLimits(Settings.model_fields["max_request_bytes"].default)


def body_limits(request: Request) -> BodyLimits:
    """The limits of the app serving `request` (the default setting's when install() set none)."""
    found = getattr(request.app.state, BODY_LIMITS, None)
    return found if isinstance(found, BodyLimits) else FALLBACK


async def cap_body(request: Request, *, task: str | None, reads_body: bool, batch: bool = False) -> None:
    """PayloadTooLargeError when `request`'s body is over its limit (`task`: the task the route
    enqueues, `batch`: a batch of them). `reads_body`: the route parses a body, which is then read
    here, at most up to the limit."""
    limits = body_limits(request)
    limit = limits.batch if batch else limits.limit(task)
    # the error names a task whose own limit applied
    own = task if task in limits.tasks and not batch else None
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(limit, own, batch=batch)
    if not reads_body:
        return
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(limit, own, batch=batch)
            chunks.append(chunk)
    except ClientDisconnect:  # as FastAPI answers a body it could not read
        raise HTTPException(400, "There was an error parsing the body") from None
    request._body = b"".join(chunks)
