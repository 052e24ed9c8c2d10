"""What a client sees of a job: `JobStatus`, assembled from ARQ's keys and our record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, JsonValue

from arq_jobs._clock import ms_to_datetime
from arq_jobs._jobs.records import JobError, JobRecord
from arq_jobs._jobs.states import JobState, derive_state
from arq_jobs._serializer import read_exception
from arq_jobs._tasks.progress import Progress

__all__ = ["JobError", "JobStatus", "build_status", "decode_error"]


class Throttled(BaseModel):
    """Why a due job waits for its task's limit, and when it tries again (no attempt is counted)."""

    reason: str = Field(description="`rate` (the task's rate limit) or `concurrency` (its max running).")
    next_try_at: datetime | None = Field(description="When it is looked at again.")


class JobStatus(BaseModel):
    """The state of one job and everything known about it."""

    job_id: str
    task: str
    queue: str | None
    status: JobState
    attempt: int = Field(description="Attempts started so far (0 until a worker picks it up).")
    max_attempts: int | None
    enqueued_at: datetime | None
    scheduled_for: datetime | None = Field(description="Run time of a delayed job, else null.")
    started_at: datetime | None
    finished_at: datetime | None
    progress: Progress | None
    result: JsonValue = Field(default=None, description="The task's result; only when succeeded.")
    error: JobError | None = Field(
        default=None, description="When failed: why. When retrying: the last attempt's error."
    )
    is_terminal: bool
    next_attempt_at: datetime | None = Field(
        default=None, description="When retrying: when the next attempt may start."
    )
    dead_lettered: bool = Field(
        default=False, description="The job failed for good and was recorded in the dead-letter store."
    )
    retry_of: str | None = Field(default=None, description="The dead-lettered job this one retries.")
    cancel_requested: bool = Field(
        default=False, description="DELETE was asked while it ran; it stops within about a second."
    )
    throttled: Throttled | None = Field(
        default=None, description="When waiting for its task's rate or concurrency limit: why, until when."
    )
    workflow_id: str | None = Field(default=None, description="The workflow this job is a step of.")
    schedule: str | None = Field(default=None, description="The schedule that made this job.")
    owner: str | None = Field(
        default=None,
        description="The name of the API key that enqueued the job (a workflow's steps: the workflow's); "
        "null when none did (authentication off, a schedule, the CLI, your own code).",
    )


def decode_error(raw: Any) -> JobError:
    """Read the error ARQ stored for a failed job (our encoded exception, or anything else)."""
    stored = read_exception(raw)
    if stored is None:
        return JobError(type="Error", message=str(raw))
    return JobError(type=stored.type, message=stored.message)


EXPIRED = JobError(
    type="JobExpired", message="the job's data expired before a worker ran it (JOBS_JOB_EXPIRES_S)"
)


def build_status(
    job_id: str,
    record: JobRecord | None,
    arq_result: dict[str, Any] | None,
    *,
    in_progress: bool,
    queued: bool,
    now_ms: int,
) -> JobStatus | None:
    """Combine our record with ARQ's result / in-progress / job keys; None without our record (ARQ's
    keys are not under our prefix: without the record the id is not one of this deployment's jobs)."""
    if record is None:
        return None
    success = None if arq_result is None else bool(arq_result.get("s"))
    state = derive_state(
        success=success,
        in_progress=in_progress,
        queued=queued,
        run_at_ms=record.run_at_ms,
        now_ms=now_ms,
        marked=record.mark,
        retry_at_ms=record.next_attempt_ms,
    )
    if state is None:  # only our record is left: the job's data expired while it waited
        state = JobState.FAILED
    attempt = record.attempt
    started_ms = record.started_ms
    finished_ms = None
    if arq_result is not None:
        # our record knows the last attempt that started; ARQ's try count also counts a try that
        # only found its predecessor's worker dead (and was refused)
        attempt = attempt or int(arq_result.get("t") or 0)
        started_ms = started_ms or arq_result.get("st")
        finished_ms = arq_result.get("ft")
    if state is JobState.CANCELLED:
        finished_ms = record.finished_ms
    error = None
    if state is JobState.FAILED:
        error = decode_error(arq_result.get("r")) if arq_result else EXPIRED
    elif state is JobState.RETRYING:
        error = record.last_error
    return JobStatus(
        job_id=job_id,
        task=record.task,
        queue=record.queue,
        status=state,
        attempt=attempt,
        max_attempts=record.max_attempts,
        enqueued_at=ms_to_datetime(record.enqueued_ms),
        scheduled_for=ms_to_datetime(record.scheduled_ms),
        started_at=ms_to_datetime(started_ms),
        finished_at=ms_to_datetime(finished_ms),
        progress=record.progress,
        result=arq_result.get("r") if state is JobState.SUCCEEDED and arq_result else None,
        error=error,
        is_terminal=state.is_terminal,
        next_attempt_at=ms_to_datetime(record.next_attempt_ms) if state is JobState.RETRYING else None,
        dead_lettered=record.dead_lettered and state is JobState.FAILED,
        retry_of=record.retry_of,
        cancel_requested=bool(record.cancel_requested_ms) and not state.is_terminal,
        throttled=_throttled(record, state),
        workflow_id=record.workflow.split(":", 1)[0] if record.workflow else None,
        schedule=record.schedule,
        owner=record.owner,
    )


def _throttled(record: JobRecord, state: JobState) -> Throttled | None:
    if record.throttle is None or state not in (JobState.PENDING, JobState.SCHEDULED):
        return None
    return Throttled(reason=record.throttle, next_try_at=ms_to_datetime(record.throttled_until_ms))
