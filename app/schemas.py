"""HTTP request and response models (the job status model itself is `jobcore.status.JobStatus`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from jobcore.states import JobState


class EnqueuedJob(BaseModel):
    """Answer to an accepted job: where to poll for its status."""

    job_id: str
    task: str
    status: JobState
    status_url: str = Field(description="GET this URL for the job's status (also the Location header).")
    scheduled_for: datetime | None = None


class TaskInfo(BaseModel):
    name: str
    description: str
    queue: str
    timeout_s: float
    max_attempts: int
    input_schema: dict[str, Any]
    result_schema: dict[str, Any]


class TaskList(BaseModel):
    tasks: list[TaskInfo]


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message naming what was wrong, and context fields."""

    model_config = {"extra": "allow"}

    error: str = Field(description="Stable error code, e.g. unknown_task, validation_error.")
    message: str


class Health(BaseModel):
    status: str
    redis: str | None = None
