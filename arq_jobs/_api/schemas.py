"""HTTP request and response models (the job status model itself is `arq_jobs._jobs.status.JobStatus`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, create_model

from arq_jobs._client import MAX_BATCH_JOBS
from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.registry import Task
from arq_jobs._version_guard import Skew


class EnqueuedJob(BaseModel):
    """Answer to an accepted job: where to poll for its status."""

    job_id: str
    task: str
    status: JobState | None = Field(
        description="The job's state: at enqueue, or its current one when an Idempotency-Key replays an "
        "earlier request (null if that job's record has expired since)."
    )
    status_url: str = Field(description="GET this URL for the job's status (also the Location header).")
    scheduled_for: datetime | None = None
    retry_of: str | None = Field(default=None, description="The dead-lettered job this one retries.")
    idempotent_replay: bool = Field(
        default=False, description="True when an Idempotency-Key matched an earlier request: no new job."
    )


class BatchJob(BaseModel):
    """One job of an accepted batch."""

    job_id: str
    status_url: str = Field(description="GET this URL for the job's status.")


class EnqueuedBatch(BaseModel):
    """Answer to an accepted batch: one job per input, in the inputs' order."""

    task: str
    status: JobState | None = Field(
        description="The state the jobs entered (pending or scheduled); null when an Idempotency-Key "
        "replays an earlier batch (each status_url tells its job's current state)."
    )
    scheduled_for: datetime | None = None
    jobs: list[BatchJob]
    idempotent_replay: bool = Field(
        default=False, description="True when an Idempotency-Key matched an earlier batch: no new jobs."
    )


def batch_request(task: Task[Any, Any]) -> type[BaseModel]:
    """The body of `task`'s batch enqueue route, `{"items": [<input>, ...]}`, named after the task so
    that OpenAPI shows each task's own (e.g. `SendWebhookBatch`)."""
    name = "".join(part[:1].upper() + part[1:] for part in task.name.split("_")) + "Batch"
    items = Annotated[
        list[task.input_model],  # type: ignore[name-defined]
        Field(
            min_length=1,
            max_length=MAX_BATCH_JOBS,
            description=f"The inputs, 1 to {MAX_BATCH_JOBS}: one {task.name} job each, in order.",
        ),
    ]
    model: type[BaseModel] = create_model(name, __doc__=f"A batch of {task.name} jobs.", items=(items, ...))
    return model


class WorkflowAccepted(BaseModel):
    """Answer to an accepted workflow: where to poll for its state."""

    workflow_id: str
    status_url: str = Field(description="GET this URL for the workflow's state (also the Location header).")


class RetryInfo(BaseModel):
    """Backoff between attempts: a random wait in [0, min(cap_s, base_s * factor^(attempt-1))]."""

    base_s: float
    factor: float
    cap_s: float
    retry_on: list[str] = Field(
        description="Exceptions retried besides TransientError (time limits included)."
    )
    fail_on: list[str] = Field(
        description="Exceptions that fail at once besides PermanentError and invalid input."
    )


class TaskInfo(BaseModel):
    name: str
    description: str
    queue: str
    timeout_s: float = Field(
        description="Hard time limit of one attempt: it is stopped and counts as failed."
    )
    soft_timeout_s: float = Field(description="Soft time limit: the task is told (ctx.soft_limit_reached).")
    max_attempts: int
    retry: RetryInfo
    rate_limit: str | None = Field(
        default=None, description="At most this many starts per period across all workers, evenly spaced."
    )
    max_concurrency: int | None = Field(
        default=None, description="At most this many attempts running at once across all workers."
    )
    input_schema: dict[str, Any]
    result_schema: dict[str, Any]


class TaskList(BaseModel):
    tasks: list[TaskInfo]


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message naming what was wrong, and context fields."""

    model_config = {"extra": "allow"}

    error: str = Field(description="Stable error code, e.g. unknown_task, validation_error.")
    message: str


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or an unknown, revoked or expired one"},
    403: {"model": ErrorBody, "description": "The key lacks the scope this operation needs"},
}
"""The answers of every guarded route (`arq_jobs._api.auth`)."""

TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {
        "model": ErrorBody,
        "description": "Request body over JOBS_MAX_REQUEST_BYTES (or the task's own max_input_bytes)",
    },
}
"""The answer of a route that reads a body (`arq_jobs._api.body`)."""

QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "The queue already holds JOBS_QUEUE_MAX_PENDING waiting jobs; nothing was queued",
        "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
    },
}
"""The answer of a route that enqueues (back-pressure)."""


class Health(BaseModel):
    status: str
    redis: str | None = None


class QueueHealth(BaseModel):
    name: str
    pending: int
    workers: int = Field(description="Live workers serving the queue.")


class WorkersHealth(BaseModel):
    status: Literal["ok", "starved"]
    starved_queues: list[str] = Field(description="Queues with pending jobs and no live worker.")
    queues: list[QueueHealth]
    error: str | None = Field(default=None, description="`starved_queues` when status is starved.")
    message: str | None = None
    skew: Skew = Field(description="Task code of the live workers vs this API's (never a cause of 503).")
