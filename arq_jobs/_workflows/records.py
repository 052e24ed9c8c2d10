"""Our record of a workflow: one Redis hash (`Keys.workflow`) with its plan and its progress.

    spec          the stages: per step its path, task, queue and job id (all assigned at creation)
    created_at    epoch ms
    stages        how many stages; size:<s> how many steps stage s has
    ttl           the hash's TTL (ms), set again on every write
    enq:<s>       once stage s's jobs have been enqueued
    r:<s>:<i>     the result (JSON) of step i of stage s, written once by its first success
    done:<s>      how many of stage s's steps have a result
    cancelled     when DELETE /workflows/{id} was asked (ms)
    error         why the workflow cannot go on (JSON `WorkflowError`): a result a step cannot take

Failure and the overall state are not stored: they are derived from this hash and the step jobs'
own statuses when read (arq_jobs._workflows.status).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from arq_jobs._config import Settings
from arq_jobs._jobs.records import record_ttl_ms
from arq_jobs._serializer import loads
from arq_jobs._tasks.registry import Task
from arq_jobs._tasks.retry import MAX_RETRY_AFTER_S
from arq_jobs._workflows.spec import WorkflowKind

SPEC = "spec"
CREATED_AT = "created_at"
STAGES = "stages"
TTL = "ttl"
CANCELLED = "cancelled"
ERROR = "error"


# per-stage fields are these prefixes plus the stage (and the step's index)
SIZE = "size:"
DONE = "done:"
ENQUEUED = "enq:"
RESULT = "r:"


def size_field(stage: int) -> str:
    return f"{SIZE}{stage}"


def done_field(stage: int) -> str:
    return f"{DONE}{stage}"


def enqueued_field(stage: int) -> str:
    return f"{ENQUEUED}{stage}"


def result_field(stage: int, index: int) -> str:
    return f"{RESULT}{stage}:{index}"


class StoredStep(BaseModel):
    path: str
    task: str
    queue: str
    job_id: str


class StoredStage(BaseModel):
    path: str
    group: bool
    steps: list[StoredStep]


class StoredSpec(BaseModel):
    type: WorkflowKind
    stages: list[StoredStage]
    owner: str | None = None  # the API key that started it: its steps' jobs are that key's too


class WorkflowError(BaseModel):
    """Why a workflow failed: a step's error, or a result the next step could not take."""

    type: str
    message: str
    step: str | None = Field(default=None, description="Path of the step that failed or could not start.")
    task: str | None = None
    job_id: str | None = None
    detail: list[dict[str, Any]] | None = Field(
        default=None, description="The input's validation errors, when a step could not take a result."
    )


@dataclass(frozen=True, slots=True)
class StepRef:
    """Which step a job is: `<workflow id>:<stage>:<index>`, the job record's `workflow` field."""

    workflow_id: str
    stage: int
    index: int

    @classmethod
    def parse(cls, ref: str) -> StepRef:
        workflow_id, stage, index = ref.rsplit(":", 2)
        return cls(workflow_id, int(stage), int(index))

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.stage}:{self.index}"


@dataclass(frozen=True, slots=True)
class WorkflowRecord:
    """One workflow's hash, read."""

    workflow_id: str
    spec: StoredSpec
    created_ms: int
    enqueued: frozenset[int]
    done: Mapping[int, int]
    results: Mapping[tuple[int, int], Any]
    cancelled_ms: int | None
    error: WorkflowError | None

    @classmethod
    def from_hash(cls, workflow_id: str, raw: Mapping[bytes, bytes]) -> WorkflowRecord | None:
        """Parse HGETALL's answer; None for a missing (expired) workflow."""
        data = {k.decode(): v for k, v in raw.items()}
        if SPEC not in data:
            return None
        enqueued: set[int] = set()
        done: dict[int, int] = {}
        results: dict[tuple[int, int], Any] = {}
        for name, value in data.items():
            if name.startswith(ENQUEUED):
                enqueued.add(int(name.removeprefix(ENQUEUED)))
            elif name.startswith(DONE):
                done[int(name.removeprefix(DONE))] = int(value)
            elif name.startswith(RESULT):
                stage, index = name.removeprefix(RESULT).split(":")
                results[int(stage), int(index)] = loads(value)
        cancelled = data.get(CANCELLED)
        error = data.get(ERROR)
        return cls(
            workflow_id=workflow_id,
            spec=StoredSpec.model_validate_json(data[SPEC]),
            created_ms=int(data[CREATED_AT]),
            enqueued=frozenset(enqueued),
            done=done,
            results=results,
            cancelled_ms=None if cancelled is None else int(cancelled),
            error=None if error is None else WorkflowError.model_validate_json(error),
        )

    def complete(self, stage: int) -> bool:
        """Whether every step of `stage` has a result."""
        return self.done.get(stage, 0) >= len(self.spec.stages[stage].steps)

    def output(self, stage: int) -> Any:
        """What `stage` hands on: its step's result, or its group's results in member order."""
        found = [self.results.get((stage, i)) for i in range(len(self.spec.stages[stage].steps))]
        return found if self.spec.stages[stage].group else found[0]


def workflow_ttl_ms(settings: Settings, tasks: Iterable[Task[Any, Any]]) -> int:
    """How long a workflow's hash lives after each write: long enough for the longest of its steps
    enqueued then to wait, use every attempt with the longest backoffs, and keep its result."""
    longest = max(
        t.max_attempts
        * (settings.job_expires_s + t.timeout_for(settings) + max(t.retry.cap_s, MAX_RETRY_AFTER_S))
        for t in tasks
    )
    return record_ttl_ms(0, longest, settings.longest_keep_s)
