"""`POST /jobs/{task}` (one route per registered task, each with its own schema; `?queue=` picks another
configured queue), `POST /jobs/{task}/batch` (many jobs of the task in one request, all or none),
`GET /jobs/{id}` and `DELETE /jobs/{id}` (cancel)."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime

from arq_jobs._api.auth import requires
from arq_jobs._api.body import body_limits
from arq_jobs._api.deps import ApiJobsDep
from arq_jobs._api.errors import BATCH_ROUTE_EXTRA, TASK_ROUTE_EXTRA, ApiRoute
from arq_jobs._api.jobs import STATUS_ROUTE
from arq_jobs._api.schemas import (
    AUTH_ERRORS,
    QUEUE_FULL,
    TOO_LARGE,
    EnqueuedBatch,
    EnqueuedJob,
    ErrorBody,
    batch_request,
)
from arq_jobs._auth.scopes import JOBS_CANCEL, JOBS_READ, enqueue_scope
from arq_jobs._client import MAX_BATCH_JOBS
from arq_jobs._config import Settings
from arq_jobs._errors import TaskInputError, UnknownTaskError
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

BATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    200: {"model": EnqueuedBatch, "description": "Idempotency-Key replay: the earlier request's jobs"},
    413: {
        "model": ErrorBody,
        "description": "Request body over JOBS_MAX_BATCH_REQUEST_BYTES; nothing was queued",
    },
    422: {
        "model": ErrorBody,
        "description": "Invalid inputs (each named by its index: body.items.<n>.<field>), delay or run_at; "
        "unknown queue. Nothing was queued",
    },
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
Endpoint = TypeVar("Endpoint", bound=Callable[..., Awaitable[Any]])


def queue_query(task: Task[Any, Any], settings: Settings) -> Any:
    """The `queue` query parameter of `task`'s enqueue route; any name reaches the client, which
    answers an unknown one with 422 `unknown_queue` (the schema lists the configured ones)."""
    own = task.queue_for(settings)
    return Query(
        max_length=200,
        description=f"Run the job on this queue instead of the task's own ({own}).",
        json_schema_extra={"enum": list(settings.queues)},
    )


def typed(endpoint: Endpoint, annotations: dict[str, Any]) -> Endpoint:
    """`endpoint` with the annotations of the parameters named in `annotations` replaced (FastAPI reads
    them from its signature): how each task's routes get its own schema."""
    signature = inspect.signature(endpoint)
    endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(annotation=annotations[p.name]) if p.name in annotations else p
            for p in signature.parameters.values()
        ]
    )
    return endpoint


def enqueue_annotations(task: Task[Any, Any], settings: Settings) -> dict[str, Any]:
    """The query parameters of `task`'s enqueue routes, one job's and a batch's: when and where."""
    return {
        "schedule": Annotated[Schedule, Depends(schedule_dependency(settings))],
        # `str` with a None default: the schema is one string with the queues as its enum
        "queue": Annotated[str, queue_query(task, settings)],
    }


def answered_before(response: Response) -> None:
    """An Idempotency-Key's repeat: 200 (not 202), marked `Idempotent-Replayed`."""
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"


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
            answered_before(response)
        return job

    body = {"data": Annotated[task.input_model, Body()]}
    return typed(enqueue, {**body, **enqueue_annotations(task, settings)})


def enqueue_batch_endpoint(
    task: Task[Any, Any], settings: Settings
) -> Callable[..., Awaitable[EnqueuedBatch]]:
    """An endpoint whose body is `{"items": [<task's input>, ...]}`: every input is validated first
    (FastAPI, at once), then all the jobs are written in one script call or none is."""

    async def enqueue_batch(
        batch: Any,
        request: Request,
        jobs: ApiJobsDep,
        schedule: Schedule,
        response: Response,
        idempotency_key: IdempotencyKey,
        queue: str | None = None,
    ) -> EnqueuedBatch:
        try:
            accepted = await jobs.enqueue_many(
                task,
                batch.items,
                delay=schedule.delay,
                run_at=schedule.run_at,
                idempotency_key=idempotency_key,
                queue=queue,
                max_item_bytes=body_limits(request).limit(task.name),  # what one job's route takes
            )
        except TaskInputError as error:  # valid, but not storable as it is: named like the model's errors
            raise RequestValidationError(
                [{**mistake, "loc": ("body", "items", *mistake["loc"])} for mistake in error.errors]
            ) from None
        if accepted.idempotent_replay:
            answered_before(response)
        return accepted

    body = {"batch": Annotated[batch_request(task), Body()]}
    return typed(enqueue_batch, {**body, **enqueue_annotations(task, settings)})


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
            f"/{task.name}/batch",
            enqueue_batch_endpoint(task, settings),
            methods=["POST"],
            status_code=202,
            response_model=EnqueuedBatch,
            name=f"enqueue_{task.name}_batch",
            summary=f"Enqueue a batch of {task.name}",
            description=f"{task.description}\n\nOne job per input (1 to {MAX_BATCH_JOBS}), all or none: "
            "every input is validated first, then all the jobs are stored at once. Answers 202 with the "
            "jobs' ids and status URLs, in the inputs' order.",
            responses={**AUTH_ERRORS, **BATCH_ERRORS},
            openapi_extra={TASK_ROUTE_EXTRA: task.name, BATCH_ROUTE_EXTRA: True},
            dependencies=[requires(enqueue_scope(task.name))],
        )
    for unknown in ("/{task}", "/{task}/batch"):
        router.add_api_route(
            unknown,
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
