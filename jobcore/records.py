"""Our record of a job: a Redis hash beside ARQ's keys with what ARQ does not keep."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobcore.progress import Progress

TASK = "task"
QUEUE = "queue"
ENQUEUED_AT = "enqueued_at"
SCHEDULED_FOR = "scheduled_for"
MAX_ATTEMPTS = "max_attempts"
ATTEMPT = "attempt"
STARTED_AT = "started_at"
WORKER = "worker"
PROGRESS = "progress"


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
        return fields

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes]) -> JobRecord | None:
        """Parse HGETALL's answer; None for a missing or incomplete record."""
        data = {k.decode(): v.decode() for k, v in raw.items()}
        if TASK not in data or ENQUEUED_AT not in data:
            return None
        progress = data.get(PROGRESS)
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
        )


RECORD_MARGIN_S = 60


def record_ttl_ms(wait_ms: int, timeout_s: float, result_ttl_s: int) -> int:
    """How long a record must live so it outlasts its job: the wait before it may run, its time
    limit, and how long its result is kept, plus a margin."""
    return wait_ms + round((timeout_s + result_ttl_s + RECORD_MARGIN_S) * 1000)


def started_fields(attempt: int, started_ms: int, worker: str) -> dict[str, str | int]:
    """The fields a worker writes when it starts an attempt."""
    return {ATTEMPT: attempt, STARTED_AT: started_ms, WORKER: worker}


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)
