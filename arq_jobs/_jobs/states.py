"""The job state machine, and how ARQ's records plus ours map onto it.

    scheduled ──(run time)──> pending ──(worker claims)──> running ──> succeeded
                                 ^                           │  └────> failed (dead-lettered)
                                 │                           v
                                 └──────(backoff over)── retrying
    pending / scheduled / retrying / running ──(DELETE /jobs/{id})──> cancelled

ARQ's result store is the source of truth for the end of a job (it is written in the same
transaction that removes the job); ARQ's in-progress key says a worker holds it (a lease its worker
renews, so it vanishes soon after a worker dies); ARQ's job key says it still waits to run. Our
record adds what ARQ does not keep: task, queue, run time, progress, and the states ARQ has no word
for (`retrying` between attempts, `cancelled`).
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def derive_state(
    *,
    success: bool | None,
    in_progress: bool,
    queued: bool,
    run_at_ms: int | None,
    now_ms: int,
    marked: JobState | None = None,
    retry_at_ms: int | None = None,
) -> JobState | None:
    """The state of a job from what Redis holds for it, or None when Redis holds nothing.

    `success` is ARQ's result flag (None while there is no result), `in_progress` whether ARQ's
    in-progress key exists, `queued` whether ARQ's job key exists, `run_at_ms` when it may run,
    `marked` the state our record was last marked with (cancelled, retrying) and `retry_at_ms` when a
    retrying job's backoff ends (after that it is pending: waiting for a worker).
    """
    if marked is JobState.CANCELLED:
        return JobState.CANCELLED
    if success is not None:
        return JobState.SUCCEEDED if success else JobState.FAILED
    if in_progress:
        return JobState.RUNNING
    if queued:
        if marked is JobState.RETRYING and (retry_at_ms is None or retry_at_ms > now_ms):
            return JobState.RETRYING
        if run_at_ms is not None and run_at_ms > now_ms:
            return JobState.SCHEDULED
        return JobState.PENDING
    return None
