"""What a client sees of a workflow: `WorkflowStatus`, derived when read from the workflow's record
and its step jobs' statuses — nothing pushes a workflow's state, so it never disagrees with them.

    succeeded  the last stage's steps all have results
    cancelled  DELETE /workflows/{id} was asked, or a step job was cancelled
    failed     a step failed (after its retries), or a result did not fit the next step's input
    running    a step runs, a step has succeeded, or a stage past the first was enqueued
    pending    none of that yet

A step that was never enqueued is `pending` while the workflow can go on and `cancelled` once it
failed or was cancelled: it never runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, JsonValue

from arq_jobs._clock import ms_to_datetime
from arq_jobs._jobs.records import JobError
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._workflows.records import StoredStep, WorkflowError, WorkflowRecord
from arq_jobs._workflows.spec import WorkflowKind

ACTIVE = frozenset({JobState.RUNNING, JobState.RETRYING})


class WorkflowState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in (WorkflowState.SUCCEEDED, WorkflowState.FAILED, WorkflowState.CANCELLED)


class WorkflowStepStatus(BaseModel):
    """One step: where it is in the spec, its job and how that job stands."""

    path: str = Field(description="Where the spec names it: `steps[1]`, `steps[2].steps[0]`, `callback`.")
    stage: int
    task: str
    job_id: str = Field(description="Assigned at creation; GET /jobs/{job_id} once the step is enqueued.")
    status: JobState
    result: JsonValue = Field(default=None, description="The step's result; only when succeeded.")
    error: JobError | None = Field(default=None, description="When failed (or retrying): why.")


class WorkflowStatus(BaseModel):
    """The state of a workflow and of each of its steps, in spec order."""

    workflow_id: str
    type: WorkflowKind
    status: WorkflowState
    is_terminal: bool
    created_at: datetime | None
    cancelled_at: datetime | None = None
    steps: list[WorkflowStepStatus]
    result: JsonValue = Field(
        default=None,
        description="When succeeded: the last step's result (a chain), the list of results (a group), "
        "the callback's result (a chord).",
    )
    error: WorkflowError | None = Field(default=None, description="When failed: which step, and why.")
    owner: str | None = Field(default=None, description="The API key that started the workflow.")


def build_workflow_status(record: WorkflowRecord, jobs: Mapping[str, JobStatus | None]) -> WorkflowStatus:
    """Derive the workflow's state from its record and the statuses of its enqueued step jobs."""
    spec = record.spec
    placed = [
        (s, i, step, jobs.get(step.job_id) if s in record.enqueued else None)
        for s, stage in enumerate(spec.stages)
        for i, step in enumerate(stage.steps)
    ]
    states = {job.status for *_, job in placed if job is not None}
    failed = next(((step, job) for *_, step, job in placed if job and job.status is JobState.FAILED), None)
    if record.complete(len(spec.stages) - 1):
        state = WorkflowState.SUCCEEDED
    elif record.cancelled_ms is not None or JobState.CANCELLED in states:
        state = WorkflowState.CANCELLED
    elif record.error is not None or failed is not None:
        state = WorkflowState.FAILED
    elif (
        states & ACTIVE
        or JobState.SUCCEEDED in states
        or record.results
        or any(stage > 0 for stage in record.enqueued)
    ):
        state = WorkflowState.RUNNING
    else:
        state = WorkflowState.PENDING
    stopped = state in (WorkflowState.FAILED, WorkflowState.CANCELLED)
    steps = [_step_status(record, s, i, step, job, stopped) for s, i, step, job in placed]
    error = None
    if state is WorkflowState.FAILED:
        error = record.error
        if error is None and failed is not None:
            error = _step_error(*failed)
    return WorkflowStatus(
        workflow_id=record.workflow_id,
        type=spec.type,
        status=state,
        is_terminal=state.is_terminal,
        created_at=ms_to_datetime(record.created_ms),
        cancelled_at=ms_to_datetime(record.cancelled_ms),
        steps=steps,
        result=record.output(len(spec.stages) - 1) if state is WorkflowState.SUCCEEDED else None,
        error=error,
        owner=spec.owner,
    )


def _step_status(
    record: WorkflowRecord, stage: int, index: int, step: StoredStep, job: JobStatus | None, stopped: bool
) -> WorkflowStepStatus:
    has_result = (stage, index) in record.results
    if job is not None and (job.status.is_terminal or not has_result):
        state = job.status
    elif has_result:  # its success is being recorded now (or its job's record has expired)
        state = JobState.SUCCEEDED
    else:  # never enqueued (or its record expired unfinished): it will not run once the workflow stopped
        state = JobState.CANCELLED if stopped else JobState.PENDING
    result = None
    if state is JobState.SUCCEEDED:
        result = record.results[stage, index] if has_result else job.result if job else None
    return WorkflowStepStatus(
        path=step.path,
        stage=stage,
        task=step.task,
        job_id=step.job_id,
        status=state,
        result=result,
        error=job.error if job is not None else None,
    )


def _step_error(step: StoredStep, job: JobStatus) -> WorkflowError:
    cause = job.error or JobError(type="Error", message="the step failed")
    return WorkflowError(
        type=cause.type,
        message=f"step {step.path} ({step.task}) failed: {cause.message}",
        step=step.path,
        task=step.task,
        job_id=step.job_id,
    )
