"""The project's exceptions. Core code raises these; `app.main` maps them to HTTP answers.

JobsError                 root: anything this project raises on purpose
├── NotFoundError         something named in the request does not exist
│   ├── UnknownTaskError  no task is registered under that name
│   └── JobNotFoundError  no job (or an expired one) has that id
├── InvalidScheduleError  delay / run_at given wrongly
├── TaskInputError        a payload does not validate against the task's input model
└── TaskError             raised inside a job: the job fails with this error
    └── WebhookError      a webhook target answered with a non-2xx status
"""

from __future__ import annotations

from typing import Any


class JobsError(Exception):
    """Root of the project's exceptions; `code` is a stable machine-readable name."""

    code = "jobs_error"

    def details(self) -> dict[str, Any]:
        """Context that names what was wrong (task, job id, field), for error bodies."""
        return {}


class NotFoundError(JobsError):
    code = "not_found"


class UnknownTaskError(NotFoundError):
    code = "unknown_task"

    def __init__(self, task: str) -> None:
        super().__init__(f"no task named {task!r} is registered")
        self.task = task

    def details(self) -> dict[str, Any]:
        return {"task": self.task}


class JobNotFoundError(NotFoundError):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r} (unknown, or its record has expired)")
        self.job_id = job_id

    def details(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class InvalidScheduleError(JobsError):
    code = "invalid_schedule"

    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields

    def details(self) -> dict[str, Any]:
        return {"fields": self.fields}


class TaskInputError(JobsError):
    code = "invalid_input"

    def __init__(self, task: str, errors: list[dict[str, Any]]) -> None:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in errors)
        super().__init__(f"invalid input for task {task!r}: {where}")
        self.task = task
        self.errors = errors

    def details(self) -> dict[str, Any]:
        return {"task": self.task, "detail": self.errors}


class TaskError(JobsError):
    """Raised by a task to fail its job with a clear message."""

    code = "task_error"


class WebhookError(TaskError):
    code = "webhook_error"

    def __init__(self, url: str, status_code: int) -> None:
        super().__init__(f"webhook target {url} answered HTTP {status_code}")
        self.url = url
        self.status_code = status_code
