"""Running workflows (arq_jobs._workflows.spec) on Redis: create one, advance it as its steps succeed,
read its status, cancel it.

- Create: everything is checked first (tasks, inputs, queues); then the record is written with every
  step's job id, then the first stage's jobs are enqueued under those ids.
- Advance, in the worker, when an attempt of a step succeeds and before its success is recorded: one
  script stores the step's result once and counts it. Scripts run one at a time, so when the last
  members of a stage finish at the same instant exactly one of them sees the count reach the stage's
  size; it checks the results against the next steps' input models and enqueues the next stage. A
  member re-run after its worker died between the two sees the stage complete again and enqueues the
  same job ids, which stores nothing the second time: a chord's callback runs once.
- Failure and the overall state are derived when read (arq_jobs._workflows.status).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from arq.connections import ArqRedis
from pydantic import BaseModel

from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import (
    InvalidWorkflowError,
    JobNotCancellableError,
    JobNotFoundError,
    JobsError,
    TaskInputError,
    UnknownQueueError,
    UnknownTaskError,
    WorkflowNotCancellableError,
    WorkflowNotFoundError,
)
from arq_jobs._jobs.status import JobStatus
from arq_jobs._keys import Keys
from arq_jobs._logs import get_logger
from arq_jobs._replicas import ReplicaAck
from arq_jobs._scripts.batch import ScriptBatch
from arq_jobs._scripts.script import load_script
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import InputT, Task, TaskRegistry, stored_payload
from arq_jobs._workflows.records import (
    CANCELLED,
    CREATED_AT,
    ERROR,
    SPEC,
    STAGES,
    TTL,
    StepRef,
    StoredSpec,
    StoredStage,
    StoredStep,
    WorkflowError,
    WorkflowRecord,
    enqueued_field,
    size_field,
    workflow_ttl_ms,
)
from arq_jobs._workflows.spec import PlacedStep, Workflow, check_size
from arq_jobs._workflows.status import WorkflowStatus, build_workflow_status

log = get_logger(__name__)

NOTHING, STAGE_COMPLETE, WORKFLOW_COMPLETE = 0, 1, 2

ADVANCE_SCRIPT = load_script("advance-workflow-1.lua")
MARK_SCRIPT = load_script("mark-workflow-1.lua")
CANCELLED_SCRIPT = load_script("workflow-cancelled-1.lua")


class JobsClient(Protocol):
    """What workflows need of a job client: arq_jobs._client.JobClient, which imports this module (a
    cancelled step's job stops its workflow), so it is named here by what it offers."""

    settings: Settings
    keys: Keys
    redis: ArqRedis
    registry: TaskRegistry
    batch: ScriptBatch
    ack: ReplicaAck | None

    async def enqueue(
        self,
        task: Task[InputT, Any],
        data: InputT,
        *,
        queue: str | None = None,
        job_id: str | None = None,
        workflow: str | None = None,
        owner: str | None = None,
    ) -> object: ...

    async def statuses(self, job_ids: Sequence[str]) -> list[JobStatus | None]: ...

    async def cancel(self, job_id: str, *, whole_workflow: bool = True) -> JobStatus: ...

    def queue_for(self, task: Task[Any, Any], queue: str | None = None) -> str: ...

    async def check_served(self, task: Task[Any, Any], queue: str, path: str | None = None) -> None: ...

    async def check_room(self, queue: str) -> None: ...


class Workflows:
    """The workflows of one deployment, on a JobClient (its registry, settings, Redis and batch)."""

    def __init__(self, client: JobsClient) -> None:
        self.client = client
        self.keys = client.keys

    async def create(self, workflow: Workflow, owner: str | None = None) -> str:
        """Check `workflow` against this deployment (JOBS_MAX_WORKFLOW_STEPS, registered tasks,
        configured queues, inputs that can be stored: InvalidWorkflowError naming the step; tasks the
        live workers serve: TaskNotServedError; room in its first stage's queues: QueueFullError),
        store it, enqueue its first stage; its id. Its steps' jobs belong to
        `owner` (an API key's name)."""
        check_size(workflow.size, self.client.settings.max_workflow_steps)
        workflow_id = uuid.uuid4().hex
        spec, tasks = self._plan(workflow)
        spec.owner = owner
        # every step now, before anything is stored: workers enqueue the later stages unguarded
        for stage in spec.stages:
            for step in stage.steps:
                await self.client.check_served(self.client.registry.get(step.task), step.queue, step.path)
        # back-pressure for the first stage as a whole, then enqueued without a limit: never half of it
        for queue in dict.fromkeys(step.queue for step in spec.stages[0].steps):
            await self.client.check_room(queue)
        first = [placed.step.data for placed in workflow.stages[0].steps]
        ttl = workflow_ttl_ms(self.client.settings, tasks)
        fields: dict[str, str | int] = {
            SPEC: spec.model_dump_json(),
            CREATED_AT: now_ms(),
            STAGES: len(spec.stages),
            TTL: ttl,
            **{size_field(s): len(stage.steps) for s, stage in enumerate(spec.stages)},
        }
        key = self.keys.workflow(workflow_id)
        async with self.client.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.pexpire(key, ttl)
            await pipe.execute()
        await self._enqueue(workflow_id, 0, spec.stages[0], first, ack=self.client.ack, owner=owner)
        log.info("workflow.created", workflow_id=workflow_id, type=spec.type.value, steps=len(tasks))
        return workflow_id

    async def status(self, workflow_id: str) -> WorkflowStatus:
        """The workflow's state and each step's; WorkflowNotFoundError for an unknown or expired id."""
        record = WorkflowRecord.from_hash(
            workflow_id,
            await self.client.redis.hgetall(self.keys.workflow(workflow_id)),  # type: ignore[misc]
        )
        if record is None:
            raise WorkflowNotFoundError(workflow_id)
        job_ids = [
            step.job_id
            for s, stage in enumerate(record.spec.stages)
            if s in record.enqueued
            for step in stage.steps
        ]
        found = await self.client.statuses(job_ids) if job_ids else []
        return build_workflow_status(record, dict(zip(job_ids, found, strict=True)))

    async def cancel(self, workflow_id: str) -> WorkflowStatus:
        """Stop a workflow that has not ended: no further stage is enqueued, and every step job
        enqueued and unfinished is cancelled (a running one stops within about a second).
        WorkflowNotCancellableError once it has ended."""
        current = await self.status(workflow_id)
        if current.is_terminal:
            raise WorkflowNotCancellableError(workflow_id, current.status.value)
        await self.stop(workflow_id)
        return await self.status(workflow_id)

    async def stop(self, workflow_id: str) -> None:
        """Cancel the workflow whatever its state says (also when one of its step jobs was cancelled
        by itself, which already makes it read `cancelled`): flag it, then cancel its unfinished steps."""
        await self._mark(workflow_id, CANCELLED, now_ms(), only_new=True)
        # read after the flag: a stage enqueued before it is seen now, and none is enqueued after
        flagged = await self.status(workflow_id)
        await asyncio.gather(
            *(self._cancel_job(step.job_id) for step in flagged.steps if not step.status.is_terminal)
        )
        log.info("workflow.cancelled", workflow_id=workflow_id)

    async def advance(self, ref: StepRef, output: Any) -> None:
        """Record that step `ref` succeeded with `output`; when that completes its stage, enqueue the
        next one (or record why it cannot take the stage's output)."""
        key = self.keys.workflow(ref.workflow_id)
        answer = await self.client.batch.call(
            ADVANCE_SCRIPT,
            ADVANCE_SCRIPT.keys(workflow=key),
            ADVANCE_SCRIPT.args(stage=ref.stage, index=ref.index, result=dumps(output)),
        )
        if answer[0] == WORKFLOW_COMPLETE:
            log.info("workflow.succeeded", workflow_id=ref.workflow_id)
        if answer[0] != STAGE_COMPLETE:
            return
        spec = StoredSpec.model_validate_json(answer[1])
        done = spec.stages[ref.stage]
        results = [loads(raw) for raw in answer[2:]]
        given = results if done.group else results[0]
        following = spec.stages[ref.stage + 1]
        inputs = []
        for step in following.steps:
            try:
                inputs.append(self.client.registry.get(step.task).parse_input(given))
            except (TaskInputError, UnknownTaskError) as error:
                await self._fail(ref.workflow_id, _cannot_take(done, step, error))
                return
        await self._enqueue(ref.workflow_id, ref.stage + 1, following, inputs, owner=spec.owner)

    async def cancelled(self, ref: StepRef) -> bool:
        """Whether the workflow of step `ref` was cancelled (asked when an attempt starts)."""
        key = self.keys.workflow(ref.workflow_id)
        answer = await self.client.batch.call(CANCELLED_SCRIPT, CANCELLED_SCRIPT.keys(workflow=key), [])
        return bool(answer)

    def _plan(self, workflow: Workflow) -> tuple[StoredSpec, list[Task[Any, Any]]]:
        """The stored spec (a job id per step) and every step's task, or the first mistake."""
        stages = []
        tasks = []
        for s, stage in enumerate(workflow.stages):
            steps = []
            for placed in stage.steps:
                task = self._registered(placed)
                queue = self._queue(placed)
                if s == 0:
                    _check_storable(placed)
                tasks.append(task)
                steps.append(
                    StoredStep(path=placed.path, task=task.name, queue=queue, job_id=uuid.uuid4().hex)
                )
            stages.append(StoredStage(path=stage.path, group=stage.group, steps=steps))
        return StoredSpec(type=workflow.kind, stages=stages), tasks

    def _registered(self, placed: PlacedStep) -> Task[Any, Any]:
        task = placed.step.task
        if task.name not in self.client.registry or self.client.registry.get(task.name) is not task:
            raise InvalidWorkflowError(
                f"task {task.name!r} is not registered here", path=placed.path, task=task.name
            )
        return task

    def _queue(self, placed: PlacedStep) -> str:
        try:
            return self.client.queue_for(placed.step.task, placed.step.queue)
        except UnknownQueueError as error:
            raise InvalidWorkflowError(
                str(error), path=placed.path, task=error.task, queue=error.queue, queues=error.queues
            ) from None

    async def _enqueue(
        self,
        workflow_id: str,
        stage: int,
        planned: StoredStage,
        inputs: Sequence[BaseModel | None],
        ack: ReplicaAck | None = None,
        owner: str | None = None,
    ) -> None:
        """Enqueue a stage's jobs under their planned ids (only if new: a second finisher stores
        nothing), then mark the stage enqueued (confirmed by `ack`'s replicas, when given)."""
        await asyncio.gather(
            *(
                self.client.enqueue(
                    self.client.registry.get(step.task),
                    data,
                    queue=step.queue,
                    job_id=step.job_id,
                    workflow=str(StepRef(workflow_id, stage, index)),
                    owner=owner,
                )
                for index, (step, data) in enumerate(zip(planned.steps, inputs, strict=True))
            )
        )
        await self._mark(workflow_id, enqueued_field(stage), 1, ack=ack)

    async def _fail(self, workflow_id: str, error: WorkflowError) -> None:
        await self._mark(workflow_id, ERROR, error.model_dump_json(exclude_none=True), only_new=True)
        log.info("workflow.failed", workflow_id=workflow_id, step=error.step, error_type=error.type)

    async def _mark(
        self,
        workflow_id: str,
        field: str,
        value: str | int,
        *,
        only_new: bool = False,
        ack: ReplicaAck | None = None,
    ) -> bool:
        key = self.keys.workflow(workflow_id)
        answer = await self.client.batch.call(
            MARK_SCRIPT,
            MARK_SCRIPT.keys(workflow=key),
            MARK_SCRIPT.args(field=field, value=value, only_new="1" if only_new else "0"),
            ack,
        )
        return bool(answer)

    async def _cancel_job(self, job_id: str) -> None:
        with contextlib.suppress(JobNotCancellableError, JobNotFoundError):  # ended or expired meanwhile
            await self.client.cancel(job_id, whole_workflow=False)


def _check_storable(placed: PlacedStep) -> None:
    """A first-stage input must come back the same from the JSON it is stored as (what an enqueue
    checks, here before the workflow is written), within its task's `max_input_bytes` (the limit of
    the task's own enqueue route)."""
    task, data = placed.step.task, placed.step.data
    assert data is not None, "first-stage steps are given their input when built"
    try:
        size = len(dumps(stored_payload(task, data)))
    except (TypeError, JobsError):  # orjson's error is a TypeError
        raise InvalidWorkflowError(
            "its input cannot be stored as JSON as it is (a SecretStr, an excluded field, an integer "
            "beyond 64 bits?)",
            path=placed.path,
            task=task.name,
        ) from None
    if task.max_input_bytes is not None and size > task.max_input_bytes:
        raise InvalidWorkflowError(
            f"its input is {size} bytes as JSON, more than the task's max_input_bytes "
            f"({task.max_input_bytes})",
            path=placed.path,
            task=task.name,
        )


def _cannot_take(done: StoredStage, step: StoredStep, error: JobsError) -> WorkflowError:
    """The error that stops a workflow whose next step cannot take the stage's output (or is not a
    task this worker knows)."""
    if not isinstance(error, TaskInputError):
        return WorkflowError(
            type=type(error).__name__,
            message=f"step {step.path} ({step.task}) cannot start: {error}",
            step=step.path,
            task=step.task,
        )
    if done.group:
        tasks = ", ".join(sorted({s.task for s in done.steps}))
        source = f"the results of group {done.path} ({len(done.steps)} steps: {tasks})"
    else:
        source = f"the result of step {done.steps[0].path} ({done.steps[0].task})"
    return WorkflowError(
        type="StepInputMismatch",
        message=f"step {step.path} ({step.task}) cannot take {source}: {error}",
        step=step.path,
        task=step.task,
        detail=error.errors,
    )
