"""`POST /jobs/{task}` (one route per registered task, each with its own schema; `?queue=` picks another
configured queue), `GET /jobs/{id}` and `DELETE /jobs/{id}` (cancel)."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from arq_jobs._api.auth import requires
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import TASK_ROUTE_EXTRA, ApiRoute
from arq_jobs._api.jobs import STATUS_ROUTE
from arq_jobs._api.schemas import AUTH_ERRORS, QUEUE_FULL, TOO_LARGE, EnqueuedJob, ErrorBody
from arq_jobs._auth.scopes import JOBS_CANCEL, JOBS_READ, enqueue_scope
from arq_jobs._config import Settings
from arq_jobs._errors import UnknownTaskError
from arq_jobs._idempotency import KEY_PATTERN
from arq_jobs._jobs.listing import JobPage
from arq_jobs._jobs.paging import CURSOR_PATTERN
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._tasks.registry import Task, TaskRegistry

ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": EnqueuedJob, "description": "Idempotency-Key replay: the earlier request's job"},
    404: {"model": ErrorBody, "description": "Unknown task"},
    409: {"model": ErrorBody, "description": "Idempotency-Key already used with a different request"},
    **TOO_LARGE,
    422: {"model": ErrorBody, "description": "Invalid body, delay or run_at; unknown queue"},
    **QUEUE_FULL,
    503: {"model": ErrorBody, "description": "Redis is unreachable; the job was not accepted"},
}


@dataclass(frozen=True, slots=True)
class Schedule:
    delay: float | None
    run_at: AwareDatetime | None


def schedule_dependency(settings: Settings) -> Callable[..., Awaitable[Schedule]]:
    """The `delay` and `run_at` query parameters of the enqueue routes, `delay` at most
    JOBS_MAX_SCHEDULE_AHEAD_S (a `run_at` beyond it is refused by the client)."""
    ahead = settings.max_schedule_ahead_s

    async def get_schedule(
        delay: Annotated[
            float | None,
            Query(ge=0, le=ahead, allow_inf_nan=False, description="Run after this many seconds."),
        ] = None,
        run_at: Annotated[
            AwareDatetime | None,
            Query(
                description=f"Run at this ISO-8601 time with a timezone, at most {ahead} s ahead (not "
                "with delay)."
            ),
        ] = None,
    ) -> Schedule:
        """When to run the job: `delay` or `run_at` (giving both is refused by the client)."""
        return Schedule(delay, run_at)

    return get_schedule


async def get_idempotency_key(
    request: Request,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=KEY_PATTERN,
            description="Makes retrying this request safe: the same key and request within the window "
            "answer 200 with the first job; the same key with a different request is 409.",
        ),
    ] = None,
) -> str | None:
    """The request's Idempotency-Key; given more than once it is refused, not guessed at."""
    if len(request.headers.getlist("idempotency-key")) > 1:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "Idempotency-Key"),
                    "msg": "give one Idempotency-Key header",
                    "type": "value_error",
                }
            ]
        )
    return key


IdempotencyKey = Annotated[str | None, Depends(get_idempotency_key)]


def queue_query(task: Task[Any, Any], settings: Settings) -> Any:
    """The `queue` query parameter of `task`'s enqueue route; any name reaches the client, which
    answers an unknown one with 422 `unknown_queue` (the schema lists the configured ones)."""
    own = task.queue_for(settings)
    return Query(
        max_length=200,
        description=f"Run the job on this queue instead of the task's own ({own}).",
        json_schema_extra={"enum": list(settings.queues)},
    )


def enqueue_endpoint(task: Task[Any, Any], settings: Settings) -> Callable[..., Awaitable[EnqueuedJob]]:
    """An endpoint whose body is `task`'s input model, so OpenAPI shows each task's schema."""

    async def enqueue(
        data: Any,
        jobs: ApiJobsDep,
        schedule: Schedule,
        response: Response,
        idempotency_key: IdempotencyKey,
        queue: str | None = None,
    ) -> EnqueuedJob:
        job = await jobs.enqueue(
            task,
            data,
            delay=schedule.delay,
            run_at=schedule.run_at,
            idempotency_key=idempotency_key,
            queue=queue,
        )
        response.headers["Location"] = job.status_url
        if job.idempotent_replay:
            response.status_code = 200
            response.headers["Idempotent-Replayed"] = "true"
        return job

    signature = inspect.signature(enqueue)
    annotations = {
        "data": Annotated[task.input_model, Body()],
        "schedule": Annotated[Schedule, Depends(schedule_dependency(settings))],
        # `str` with a None default: the schema is one string with the queues as its enum
        "queue": Annotated[str, queue_query(task, settings)],
    }
    enqueue.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=annotations[p.name]) if p.name in annotations else p
            for p in signature.parameters.values()
        ]
    )
    return enqueue


async def unknown_task(task: str) -> None:
    raise UnknownTaskError(task)


async def get_job(job_id: str, jobs: ApiJobsDep) -> JobStatus:
    """State, attempt, timestamps, progress, and the result or error of a job."""
    return await jobs.status(job_id)


async def cancel_job(job_id: str, jobs: ApiJobsDep, response: Response) -> JobStatus:
    """Cancel a job. Pending, scheduled or retrying: it never runs (200, `cancelled`). Running: its
    worker stops it within about a second (202, `cancel_requested: true`; poll for `cancelled`)."""
    status = await jobs.cancel(job_id)
    if not status.is_terminal:
        response.status_code = 202
    return status


async def list_jobs(
    jobs: ApiJobsDep,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    task: Annotated[str | None, Query(max_length=200, description="Only this task's jobs.")] = None,
    queue: Annotated[str | None, Query(max_length=200, description="Only this queue's jobs.")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page.")
    ] = None,
) -> JobPage:
    """Jobs newest first (by run time: scheduled time, else enqueue time), each shaped like
    `GET /jobs/{id}` (a result over 1 KiB is left out: `result_omitted`). Kept as long as records."""
    return await jobs.jobs(state=state, task=task, queue=queue, limit=limit, cursor=cursor)


def build_router(registry: TaskRegistry, settings: Settings) -> APIRouter:
    router = APIRouter(route_class=ApiRoute, prefix="/jobs", tags=["jobs"])
    router.add_api_route(
        "",
        list_jobs,
        methods=["GET"],
        name="list_jobs",
        response_model=JobPage,
        responses={**AUTH_ERRORS, 422: {"model": ErrorBody, "description": "Invalid state, limit or cursor"}},
        dependencies=[requires(JOBS_READ)],
    )
    for task in registry:
        router.add_api_route(
            f"/{task.name}",
            enqueue_endpoint(task, settings),
            methods=["POST"],
            status_code=202,
            response_model=EnqueuedJob,
            name=f"enqueue_{task.name}",
            summary=f"Enqueue {task.name}",
            description=f"{task.description}\n\nAnswers 202 with the job id and its status URL.",
            responses={**AUTH_ERRORS, **ERRORS},
            openapi_extra={TASK_ROUTE_EXTRA: task.name},
            dependencies=[requires(enqueue_scope(task.name))],
        )
    router.add_api_route(
        "/{task}",
        unknown_task,
        methods=["POST"],
        status_code=404,
        include_in_schema=False,
        dependencies=[requires()],
    )
    router.add_api_route(
        "/{job_id}",
        get_job,
        methods=["GET"],
        name=STATUS_ROUTE,
        response_model=JobStatus,
        dependencies=[requires(JOBS_READ)],
        responses={
            **AUTH_ERRORS,
            404: {"model": ErrorBody, "description": "Unknown job id"},
            422: {"model": ErrorBody, "description": "Invalid job id"},
        },
    )
    router.add_api_route(
        "/{job_id}",
        cancel_job,
        methods=["DELETE"],
        name="cancel_job",
        response_model=JobStatus,
        dependencies=[requires(JOBS_CANCEL)],
        responses={
            **AUTH_ERRORS,
            202: {"model": JobStatus, "description": "Running: cancel requested, it stops within ~1 s"},
            404: {"model": ErrorBody, "description": "Unknown job id"},
            409: {"model": ErrorBody, "description": "The job has already ended"},
            422: {"model": ErrorBody, "description": "Invalid job id"},
        },
    )
    return router
