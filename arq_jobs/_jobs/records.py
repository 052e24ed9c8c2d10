"""Our record of a job: a Redis hash beside ARQ's keys with what ARQ does not keep."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel

from arq_jobs._jobs.states import JobState
from arq_jobs._tasks.progress import Progress

TASK = "task"
QUEUE = "queue"
ENQUEUED_AT = "enqueued_at"
SCHEDULED_FOR = "scheduled_for"
MAX_ATTEMPTS = "max_attempts"
ATTEMPT = "attempt"
STARTED_AT = "started_at"
WORKER = "worker"
PROGRESS = "progress"
MARK = "state"
NEXT_ATTEMPT_AT = "next_attempt_at"
LAST_ERROR = "last_error"
DEAD_LETTERED = "dead_lettered"
RETRY_OF = "retry_of"
CANCEL_REQUESTED = "cancel_requested"
FINISHED_AT = "finished_at"
PHASE = "phase"  # which phase index holds the job (arq_jobs._jobs.transitions)
TRACE = "trace"  # W3C trace context of the enqueue (arq_jobs._tracing)
WORKFLOW = "workflow"  # "<workflow id>:<stage>:<index>" of a workflow's step (arq_jobs._workflows.engine)
SCHEDULE = "schedule"  # the name of the schedule that made the job (arq_jobs._schedules.views)
THROTTLE = "throttle"  # why a due job waits: "rate" or "concurrency" (arq_jobs._limits.worker)
THROTTLED_UNTIL = "throttled_until"  # when a throttled job tries again
OWNER = "owner"  # the API key that enqueued the job (arq_jobs._auth)

MARKABLE = frozenset({JobState.RETRYING, JobState.CANCELLED})


class JobError(BaseModel):
    """An attempt's error: the exception's type and message (its traceback goes to dead letters and
    ARQ's result, not to API clients)."""

    type: str
    message: str


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job's record; times are epoch milliseconds."""

    task: str
    queue: str
    enqueued_ms: int
    scheduled_ms: int | None
    max_attempts: int
    attempt: int = 0
    started_ms: int | None = None
    worker: str | None = None
    progress: Progress | None = None
    mark: JobState | None = None
    next_attempt_ms: int | None = None
    last_error: JobError | None = None
    dead_lettered: bool = False
    retry_of: str | None = None
    cancel_requested_ms: int | None = None
    finished_ms: int | None = None
    trace: str | None = None
    workflow: str | None = None
    schedule: str | None = None
    throttle: str | None = None
    throttled_until_ms: int | None = None
    owner: str | None = None

    @property
    def run_at_ms(self) -> int:
        """When the job may run: its scheduled time, else when it was enqueued."""
        return self.scheduled_ms if self.scheduled_ms is not None else self.enqueued_ms

    def to_hash(self) -> dict[str, str | int]:
        """The fields written at enqueue time."""
        fields: dict[str, str | int] = {
            TASK: self.task,
            QUEUE: self.queue,
            ENQUEUED_AT: self.enqueued_ms,
            MAX_ATTEMPTS: self.max_attempts,
        }
        if self.scheduled_ms is not None:
            fields[SCHEDULED_FOR] = self.scheduled_ms
        if self.retry_of is not None:
            fields[RETRY_OF] = self.retry_of
        if self.trace is not None:
            fields[TRACE] = self.trace
        if self.workflow is not None:
            fields[WORKFLOW] = self.workflow
        if self.schedule is not None:
            fields[SCHEDULE] = self.schedule
        if self.owner is not None:
            fields[OWNER] = self.owner
        return fields

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes]) -> JobRecord | None:
        """Parse HGETALL's answer; None for a missing or incomplete record."""
        data = {k.decode(): v.decode() for k, v in raw.items()}
        if TASK not in data or ENQUEUED_AT not in data:
            return None
        progress = data.get(PROGRESS)
        mark = data.get(MARK)
        last_error = data.get(LAST_ERROR)
        return cls(
            task=data[TASK],
            queue=data.get(QUEUE, ""),
            enqueued_ms=int(data[ENQUEUED_AT]),
            scheduled_ms=_int_or_none(data.get(SCHEDULED_FOR)),
            max_attempts=int(data.get(MAX_ATTEMPTS, "1")),
            attempt=int(data.get(ATTEMPT, "0")),
            started_ms=_int_or_none(data.get(STARTED_AT)),
            worker=data.get(WORKER),
            progress=Progress.model_validate_json(progress) if progress else None,
            mark=JobState(mark) if mark in MARKABLE else None,
            next_attempt_ms=_int_or_none(data.get(NEXT_ATTEMPT_AT)),
            last_error=JobError.model_validate_json(last_error) if last_error else None,
            dead_lettered=data.get(DEAD_LETTERED) == "1",
            retry_of=data.get(RETRY_OF),
            cancel_requested_ms=_int_or_none(data.get(CANCEL_REQUESTED)),
            finished_ms=_int_or_none(data.get(FINISHED_AT)),
            trace=data.get(TRACE),
            workflow=data.get(WORKFLOW),
            schedule=data.get(SCHEDULE),
            throttle=data.get(THROTTLE),
            throttled_until_ms=_int_or_none(data.get(THROTTLED_UNTIL)),
            owner=data.get(OWNER),
        )


RECORD_MARGIN_S = 60


def record_ttl_ms(wait_ms: int, timeout_s: float, result_ttl_s: int) -> int:
    """How long a record must live so it outlasts its job: the wait before it may run, its time
    limit, and how long its result is kept, plus a margin."""
    return wait_ms + round((timeout_s + result_ttl_s + RECORD_MARGIN_S) * 1000)


def retrying_fields(next_attempt_ms: int, error: JobError) -> dict[str, str | int]:
    """The fields that mark a job waiting for its next attempt."""
    return {
        MARK: JobState.RETRYING.value,
        NEXT_ATTEMPT_AT: next_attempt_ms,
        LAST_ERROR: error.model_dump_json(),
    }


def cancelled_fields(finished_ms: int) -> dict[str, str | int]:
    """The fields that mark a job cancelled."""
    return {MARK: JobState.CANCELLED.value, FINISHED_AT: finished_ms}


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)
