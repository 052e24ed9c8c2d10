"""Workflows on fakeredis: spec mistakes, creation, advancing (two finishers at once, a member run again
after a crash), states derived when read, cancel; then through a real arq worker and the HTTP routes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from arq_jobs._client import JobClient
from arq_jobs._errors import InvalidWorkflowError, WorkflowNotCancellableError, WorkflowNotFoundError
from arq_jobs._jobs.records import JobError
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._scripts.run import run_script
from arq_jobs._serializer import dumps
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import Task, TaskRegistry, task
from arq_jobs._workflows.engine import ADVANCE_SCRIPT, Workflows
from arq_jobs._workflows.records import StepRef, StoredSpec, StoredStage, StoredStep, WorkflowRecord
from arq_jobs._workflows.spec import Workflow, WorkflowKind, group
from arq_jobs._workflows.status import WorkflowState, build_workflow_status
from tests.integration.tasks.workflow_steps import (
    Number,
    Pair,
    Value,
    Values,
    wf_add,
    wf_double,
    wf_fail_always,
    wf_greet,
    wf_square,
    wf_total,
)
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker, make_settings
from .test_jobs_facade import typecheck

WORKFLOW_TASKS: list[Task[Any, Any]] = [wf_add, wf_double, wf_square, wf_total, wf_fail_always, wf_greet]


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([*shipped, *WORKFLOW_TASKS])


@pytest.fixture
def workflows(job_client: JobClient) -> Workflows:
    return Workflows(job_client)


def chain_spec(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"type": "chain", "steps": list(steps)}


ADD = {"task": "wf_add", "input": {"a": 2, "b": 3}}

# ---------------------------------------------------------------- building blocks and their checks


def test_json_spec_builds_the_same_stages_as_the_facade(registry: TaskRegistry) -> None:
    spec = chain_spec(
        ADD,
        {"task": "wf_double", "queue": "high"},
        {"type": "group", "steps": [{"task": "wf_square"}, {"task": "wf_double"}]},
    )
    from_json = Workflow.from_json(spec, registry)
    built = Workflow.chain(
        wf_add.step(Pair(a=2, b=3)),
        wf_double.step(queue="high"),
        group(wf_square.step(), wf_double.step()),
    )
    assert from_json == built
    assert [(s.path, s.group, [p.path for p in s.steps]) for s in built.stages] == [
        ("steps[0]", False, ["steps[0]"]),
        ("steps[1]", False, ["steps[1]"]),
        ("steps[2]", True, ["steps[2].steps[0]", "steps[2].steps[1]"]),
    ]
    assert built.stages[0].steps[0].step.data == Pair(a=2, b=3)
    assert built.stages[1].steps[0].step.queue == "high"


def test_chord_and_group_stages(registry: TaskRegistry) -> None:
    chord = Workflow.from_json(
        {
            "type": "chord",
            "steps": [{"task": "wf_square", "input": {"n": n}} for n in range(3)],
            "callback": {"task": "wf_total"},
        },
        registry,
    )
    assert chord.kind is WorkflowKind.CHORD
    assert [(s.path, s.group, len(s.steps)) for s in chord.stages] == [
        ("steps", True, 3),
        ("callback", False, 1),
    ]
    assert [p.step.data for p in chord.stages[0].steps] == [Number(n=n) for n in range(3)]
    plain = Workflow.group(wf_square.step(Number(n=1)), wf_double.step(Number(n=2)))
    assert [(s.path, [p.path for p in s.steps]) for s in plain.stages] == [
        ("steps", ["steps[0]", "steps[1]"])
    ]


def test_a_first_step_without_input_takes_its_models_defaults() -> None:
    built = Workflow.group(noop.step())
    assert built.stages[0].steps[0].step.data == NoopInput(value=None)


SPEC_MISTAKES = [
    (
        ["not", "an", "object"],
        None,
        None,
        "invalid workflow: a workflow is a JSON object with `type` and `steps`",
    ),
    (
        {"type": "pipeline", "steps": []},
        "type",
        None,
        "invalid workflow: type: `type` must be chain, group or chord, not 'pipeline'",
    ),
    (
        {"type": "chain", "steps": []},
        "steps",
        None,
        "invalid workflow: steps: a chain needs at least one step",
    ),
    ({"type": "chain"}, "steps", None, "invalid workflow: steps: `steps` is a list of steps"),
    (
        chain_spec(ADD, {"task": "nope"}),
        "steps[1]",
        "nope",
        "invalid workflow: steps[1] (nope): no task named 'nope' is registered",
    ),
    (
        chain_spec(ADD, {"type": "group", "steps": []}),
        "steps[1]",
        None,
        "invalid workflow: steps[1]: a group needs at least one step",
    ),
    (
        {"type": "group", "steps": [{"type": "group", "steps": [ADD]}]},
        "steps[0]",
        None,
        "invalid workflow: steps[0]: groups nest only in a chain, one level deep",
    ),
    (
        chain_spec(ADD, {"type": "group", "steps": [{"type": "group", "steps": [{"task": "wf_double"}]}]}),
        "steps[1].steps[0]",
        None,
        "invalid workflow: steps[1].steps[0]: groups nest only in a chain, one level deep",
    ),
    (
        chain_spec(ADD, {"type": "chain", "steps": [{"task": "wf_double"}]}),
        "steps[1]",
        None,
        "invalid workflow: steps[1]: a chain's step is a task or a group, not a 'chain': only groups nest",
    ),
    (
        chain_spec(ADD, {"task": "wf_double", "input": {"n": 1}}),
        "steps[1]",
        "wf_double",
        "invalid workflow: steps[1] (wf_double): only the steps of a workflow's first stage take an input; "
        "this one is given the previous step's result (or a group's list of results): remove its input",
    ),
    (
        {
            "type": "chord",
            "steps": [{"task": "wf_square", "input": {"n": 2}}],
            "callback": {"task": "wf_total", "input": []},
        },
        "callback",
        "wf_total",
        "invalid workflow: callback (wf_total): only the steps of a workflow's first stage take an input; "
        "this one is given the previous step's result (or a group's list of results): remove its input",
    ),
    (
        {"type": "chord", "steps": [{"task": "wf_square", "input": {"n": 2}}]},
        "callback",
        None,
        "invalid workflow: callback: a chord needs a `callback` step",
    ),
    (
        chain_spec({"task": "wf_add", "inputs": {"a": 1, "b": 2}}),
        "steps[0]",
        None,
        "invalid workflow: steps[0]: unknown field 'inputs' (allowed: input, queue, task)",
    ),
    (
        {"type": "group", "steps": [ADD], "callback": {"task": "wf_total"}},
        None,
        None,
        "invalid workflow: unknown field 'callback' (allowed: steps, type)",
    ),
    (
        chain_spec({"task": "wf_add", "input": {"a": 1, "b": 2}, "queue": 3}),
        "steps[0]",
        "wf_add",
        "invalid workflow: steps[0] (wf_add): `queue` is the name of a queue",
    ),
]


@pytest.mark.parametrize(("spec", "path", "task_name", "message"), SPEC_MISTAKES)
def test_spec_mistakes_name_the_step(
    registry: TaskRegistry, spec: Any, path: str | None, task_name: str | None, message: str
) -> None:
    with pytest.raises(InvalidWorkflowError) as raised:
        Workflow.from_json(spec, registry)
    assert str(raised.value) == message
    assert (raised.value.path, raised.value.task) == (path, task_name)


def test_a_bad_input_carries_its_pydantic_errors(registry: TaskRegistry) -> None:
    spec = {
        "type": "group",
        "steps": [{"task": "wf_square", "input": {"n": 1}}, {"task": "wf_square", "input": {"n": "x"}}],
    }
    with pytest.raises(InvalidWorkflowError) as raised:
        Workflow.from_json(spec, registry)
    assert raised.value.details() == {
        "path": "steps[1]",
        "task": "wf_square",
        "detail": [
            {
                "loc": ["n"],
                "msg": "Input should be a valid integer, unable to parse string as an integer",
                "type": "int_parsing",
            }
        ],
    }
    assert str(raised.value) == (
        "invalid workflow: steps[1] (wf_square): invalid input for task 'wf_square': "
        "n: Input should be a valid integer, unable to parse string as an integer"
    )


def test_facade_blocks_are_checked_when_built() -> None:
    with pytest.raises(InvalidWorkflowError, match=r"steps\[1\] \(wf_double\): only the steps"):
        Workflow.chain(wf_add.step(Pair(a=1, b=2)), wf_double.step(Number(n=1)))
    with pytest.raises(
        InvalidWorkflowError, match=r"^invalid workflow: steps\[1\]: a group needs at least one step$"
    ):
        Workflow.chain(wf_add.step(Pair(a=1, b=2)), group())
    with pytest.raises(
        InvalidWorkflowError, match=r"^invalid workflow: steps: a group needs at least one step$"
    ):
        Workflow.group()
    with pytest.raises(InvalidWorkflowError, match=r"steps\[0\]: groups nest only in a chain"):
        Workflow.group(group(wf_square.step(Number(n=1))))  # type: ignore[arg-type]
    with pytest.raises(
        InvalidWorkflowError, match=r"steps\[0\] \(wf_add\): its input must be a Pair, not a Number"
    ):
        Workflow.chain(wf_add.step(Number(n=1)))  # type: ignore[arg-type]
    with pytest.raises(InvalidWorkflowError) as raised:
        Workflow.chord([wf_add.step()], wf_total.step())  # Pair's fields are required
    assert raised.value.path == "steps[0]"
    assert [e["loc"] for e in raised.value.detail or []] == [["a"], ["b"]]
    with pytest.raises(
        InvalidWorkflowError, match=r"^invalid workflow: callback \(wf_total\): only the steps"
    ):
        Workflow.chord([wf_square.step(Number(n=1))], wf_total.step(Values([])))


FACADE_ROUTE = """
from arq_jobs._api.deps import JobsDep
from arq_jobs._workflows.spec import group
from tests.integration.tasks.workflow_steps import Number, Pair, wf_add, wf_double, wf_square


async def route(jobs: JobsDep) -> str:
    accepted = await jobs.chain(wf_add.step({model}), wf_double.step(), group(wf_square.step(), wf_double.step()))
    return accepted.status_url
"""


def test_a_step_with_the_wrong_input_model_is_a_type_error(tmp_path: Path) -> None:
    out, code = typecheck(FACADE_ROUTE.format(model="Pair(a=1, b=2)"), tmp_path)
    assert code == 0, out
    out, code = typecheck(FACADE_ROUTE.format(model="Number(n=1)"), tmp_path)
    assert code == 1
    assert (
        'user_route.py:8: error: Argument 1 to "step" of "Task" has incompatible type "Number"; expected "Pair | None"'
        in out
    )


# ---------------------------------------------------------------- creating


async def test_create_stores_every_step_and_enqueues_the_first_stage(
    workflows: Workflows, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    workflow_id = await workflows.create(
        Workflow.chord([wf_square.step(Number(n=n)) for n in range(3)], wf_total.step(queue="low"))
    )
    key = f"unit:workflow:{workflow_id}"
    stored = {k.decode(): v.decode() for k, v in (await arq_redis.hgetall(key)).items()}
    assert {k: stored[k] for k in ("stages", "size:0", "size:1", "enq:0")} == {
        "stages": "2", "size:0": "3", "size:1": "1", "enq:0": "1"
    }  # fmt: skip
    assert "enq:1" not in stored and "cancelled" not in stored and "error" not in stored
    ttl = int(stored["ttl"])
    assert ttl - 1000 < await arq_redis.pttl(key) <= ttl
    spec = StoredSpec.model_validate_json(stored["spec"])
    assert [[(s.path, s.task, s.queue) for s in stage.steps] for stage in spec.stages] == [
        [
            ("steps[0]", "wf_square", "default"),
            ("steps[1]", "wf_square", "default"),
            ("steps[2]", "wf_square", "default"),
        ],
        [("callback", "wf_total", "low")],
    ]
    members = [step.job_id for step in spec.stages[0].steps]
    for index, job_id in enumerate(members):
        job = await job_client.status(job_id)
        assert (job.task, job.status, job.workflow_id) == ("wf_square", JobState.PENDING, workflow_id)
        assert await arq_redis.hget(f"unit:job:{job_id}", "workflow") == f"{workflow_id}:0:{index}".encode()
        assert (await job_client.details(job_id)).input == {"n": index, "delay_s": 0.0}
    callback = spec.stages[1].steps[0].job_id
    assert (await job_client.statuses([callback])) == [None]  # not enqueued before its stage
    status = await workflows.status(workflow_id)
    assert (status.status, status.type, status.result, status.error) == (
        WorkflowState.PENDING,
        "chord",
        None,
        None,
    )
    assert [(s.path, s.stage, s.job_id, s.status) for s in status.steps] == [
        *((f"steps[{n}]", 0, members[n], JobState.PENDING) for n in range(3)),
        ("callback", 1, callback, JobState.PENDING),
    ]


async def test_a_mistake_found_at_creation_writes_nothing(workflows: Workflows, arq_redis: ArqRedis) -> None:
    with pytest.raises(InvalidWorkflowError) as raised:
        await workflows.create(Workflow.chain(wf_add.step(Pair(a=1, b=2)), wf_double.step(queue="urgent")))
    assert raised.value.details() == {
        "path": "steps[1]",
        "task": "wf_double",
        "queue": "urgent",
        "queues": ["high", "default", "low"],
    }
    assert str(raised.value) == (
        "invalid workflow: steps[1] (wf_double): no queue named 'urgent' is configured; "
        "the queues are high, default, low"
    )

    @task()
    async def stranger(ctx: JobContext, data: Number) -> None:
        """Not registered."""

    with pytest.raises(
        InvalidWorkflowError, match=r"steps\[0\] \(stranger\): task 'stranger' is not registered"
    ):
        await workflows.create(Workflow.group(stranger.step(Number(n=1))))
    assert await arq_redis.keys("*") == []


# ---------------------------------------------------------------- advancing


async def test_last_members_finishing_at_once_enqueue_the_callback_once(
    workflows: Workflows, job_client: JobClient, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow_id = await workflows.create(
        Workflow.chord([wf_square.step(Number(n=n)) for n in range(3)], wf_total.step())
    )
    enqueued_stages: list[int] = []
    enqueue = workflows._enqueue

    async def counting(workflow_id: str, stage: int, *args: Any, **kwargs: Any) -> None:
        enqueued_stages.append(stage)
        await enqueue(workflow_id, stage, *args, **kwargs)

    monkeypatch.setattr(workflows, "_enqueue", counting)
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 0})
    assert enqueued_stages == []
    await asyncio.gather(
        workflows.advance(StepRef(workflow_id, 0, 2), {"n": 4}),
        workflows.advance(StepRef(workflow_id, 0, 1), {"n": 1}),
    )
    assert enqueued_stages == [1]
    status = await workflows.status(workflow_id)
    callback = status.steps[-1]
    assert (callback.path, callback.status) == ("callback", JobState.PENDING)
    assert (await job_client.details(callback.job_id)).input == [{"n": 0}, {"n": 1}, {"n": 4}]
    assert len(await arq_redis.keys("unit:job:*")) == 4
    assert await arq_redis.hget(f"unit:workflow:{workflow_id}", "done:0") == b"3"
    assert (status.status, [s.result for s in status.steps[:3]]) == (
        WorkflowState.RUNNING,
        [{"n": 0}, {"n": 1}, {"n": 4}],
    )


async def test_a_member_run_again_after_a_crash_enqueues_the_next_stage_once(
    workflows: Workflows, job_client: JobClient, arq_redis: ArqRedis
) -> None:
    workflow_id = await workflows.create(Workflow.chain(wf_add.step(Pair(a=2, b=3)), wf_double.step()))
    key = f"unit:workflow:{workflow_id}"
    # the worker ran the script, then died before enqueueing the next stage
    answer = await run_script(arq_redis, ADVANCE_SCRIPT, [key], [0, 0, dumps({"n": 5})])
    assert answer[0] == 1
    second = (await workflows.status(workflow_id)).steps[1]
    assert (await job_client.statuses([second.job_id])) == [None]
    # the job runs again (and this time returns something else): the first result is the one kept
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 6})
    assert (await job_client.details(second.job_id)).input == {"n": 5, "delay_s": 0.0}
    assert (await job_client.status(second.job_id)).workflow_id == workflow_id
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 6})
    await arq_redis.hdel(key, "enq:1")  # even past the flag, the job id is used once
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 6})
    assert len(await arq_redis.keys("unit:job:*")) == 2
    assert await arq_redis.hget(key, "done:0") == b"1"


async def test_a_result_the_next_step_cannot_take_fails_the_workflow_naming_both(
    workflows: Workflows, job_client: JobClient
) -> None:
    workflow_id = await workflows.create(Workflow.chain(wf_add.step(Pair(a=2, b=3)), wf_greet.step()))
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 5})
    status = await workflows.status(workflow_id)
    assert (status.status, status.is_terminal) == (WorkflowState.FAILED, True)
    assert status.error is not None
    assert status.error.model_dump() == {
        "type": "StepInputMismatch",
        "message": "step steps[1] (wf_greet) cannot take the result of step steps[0] (wf_add): "
        "invalid input for task 'wf_greet': name: Field required",
        "step": "steps[1]",
        "task": "wf_greet",
        "job_id": None,
        "detail": [{"loc": ["name"], "msg": "Field required", "type": "missing"}],
    }
    assert [s.status for s in status.steps] == [JobState.SUCCEEDED, JobState.CANCELLED]
    assert await job_client.statuses([status.steps[1].job_id]) == [None]


async def test_group_results_feed_the_next_step_as_a_list_in_member_order(
    workflows: Workflows, job_client: JobClient
) -> None:
    workflow_id = await workflows.create(
        Workflow.chain(
            wf_add.step(Pair(a=1, b=1)), group(wf_square.step(), wf_double.step()), wf_greet.step()
        )
    )
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 2})
    status = await workflows.status(workflow_id)
    assert [s.status for s in status.steps] == [
        JobState.SUCCEEDED,
        JobState.PENDING,
        JobState.PENDING,
        JobState.PENDING,
    ]
    for member in status.steps[1:3]:
        assert (await job_client.details(member.job_id)).input == {"n": 2, "delay_s": 0.0}
    await workflows.advance(StepRef(workflow_id, 1, 1), {"n": 4})
    await workflows.advance(StepRef(workflow_id, 1, 0), {"n": 4})
    status = await workflows.status(workflow_id)
    assert status.error is not None
    assert status.error.message.startswith(
        "step steps[2] (wf_greet) cannot take the results of group steps[1] (2 steps: wf_double, wf_square): "
        "invalid input for task 'wf_greet'"
    )


async def test_cancel_stops_waiting_steps_and_the_next_stage(
    workflows: Workflows, job_client: JobClient
) -> None:
    workflow_id = await workflows.create(Workflow.chain(wf_add.step(Pair(a=2, b=3)), wf_double.step()))
    status = await workflows.cancel(workflow_id)
    assert (status.status, status.is_terminal) == (WorkflowState.CANCELLED, True)
    assert status.cancelled_at is not None
    assert [s.status for s in status.steps] == [JobState.CANCELLED, JobState.CANCELLED]
    assert (await job_client.status(status.steps[0].job_id)).status is JobState.CANCELLED
    await workflows.advance(StepRef(workflow_id, 0, 0), {"n": 5})  # it had finished at that very moment
    assert await job_client.statuses([status.steps[1].job_id]) == [None]
    with pytest.raises(WorkflowNotCancellableError) as raised:
        await workflows.cancel(workflow_id)
    assert raised.value.details() == {"workflow_id": workflow_id, "status": "cancelled"}


async def test_unknown_workflow(workflows: Workflows) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await workflows.status("nope")
    with pytest.raises(WorkflowNotFoundError):
        await workflows.cancel("nope")


# ---------------------------------------------------------------- states derived when read


def stored_chain(
    *, enqueued: set[int], results: dict[tuple[int, int], Any] | None = None, cancelled: bool = False
) -> WorkflowRecord:
    steps = [
        StoredStep(path=f"steps[{n}]", task="wf_double", queue="default", job_id=f"job{n}") for n in range(2)
    ]
    spec = StoredSpec(
        type=WorkflowKind.CHAIN, stages=[StoredStage(path=s.path, group=False, steps=[s]) for s in steps]
    )
    results = results or {}
    return WorkflowRecord(
        workflow_id="wf",
        spec=spec,
        created_ms=1_000,
        enqueued=frozenset(enqueued),
        done={stage: 1 for stage, _ in results},
        results=results,
        cancelled_ms=2_000 if cancelled else None,
        error=None,
    )


def job(job_id: str, state: JobState, result: Any = None, error: JobError | None = None) -> JobStatus:
    return JobStatus(
        job_id=job_id, task="wf_double", queue="default", status=state, attempt=1, max_attempts=1,
        enqueued_at=None, scheduled_for=None, started_at=None, finished_at=None, progress=None,
        result=result, error=error, is_terminal=state.is_terminal,
    )  # fmt: skip


BOOM = JobError(type="TaskError", message="cannot take 5")

DERIVED = [
    ("pending", stored_chain(enqueued={0}), {"job0": job("job0", JobState.PENDING)}, ["pending", "pending"]),
    ("running", stored_chain(enqueued={0}), {"job0": job("job0", JobState.RUNNING)}, ["running", "pending"]),
    (
        "running",
        stored_chain(enqueued={0}),
        {"job0": job("job0", JobState.RETRYING, error=BOOM)},
        ["retrying", "pending"],
    ),
    (
        "running",
        stored_chain(enqueued={0, 1}, results={(0, 0): {"n": 5}}),
        {"job0": job("job0", JobState.SUCCEEDED, {"n": 5}), "job1": job("job1", JobState.PENDING)},
        ["succeeded", "pending"],
    ),
    (
        "succeeded",
        stored_chain(enqueued={0, 1}, results={(0, 0): {"n": 5}, (1, 0): {"n": 10}}),
        {"job0": job("job0", JobState.SUCCEEDED, {"n": 5}), "job1": job("job1", JobState.RUNNING)},
        ["succeeded", "succeeded"],
    ),
    (
        "failed",
        stored_chain(enqueued={0}),
        {"job0": job("job0", JobState.FAILED, error=BOOM)},
        ["failed", "cancelled"],
    ),
    (
        "cancelled",
        stored_chain(enqueued={0}, cancelled=True),
        {"job0": job("job0", JobState.RUNNING)},
        ["running", "cancelled"],
    ),
    (
        "cancelled",
        stored_chain(enqueued={0}),
        {"job0": job("job0", JobState.CANCELLED)},
        ["cancelled", "cancelled"],
    ),
    ("pending", stored_chain(enqueued=set()), {}, ["pending", "pending"]),
]


@pytest.mark.parametrize(("state", "record", "jobs", "steps"), DERIVED)
def test_states_are_derived_from_the_record_and_the_step_jobs(
    state: str, record: WorkflowRecord, jobs: dict[str, JobStatus], steps: list[str]
) -> None:
    status = build_workflow_status(record, jobs)
    assert (status.status, [s.status for s in status.steps]) == (state, steps)
    assert status.is_terminal is (state in ("succeeded", "failed", "cancelled"))
    assert status.result == ({"n": 10} if state == "succeeded" else None)
    if state == "failed":
        assert status.error is not None
        assert status.error.model_dump(exclude_none=True) == {
            "type": "TaskError",
            "message": "step steps[0] (wf_double) failed: cannot take 5",
            "step": "steps[0]",
            "task": "wf_double",
            "job_id": "job0",
        }
    else:
        assert status.error is None


# ---------------------------------------------------------------- with a real arq worker


async def run_until_ended(client: httpx.AsyncClient, run_worker: RunWorker, url: str) -> dict[str, Any]:
    """Burst workers until the workflow has ended (a burst ends when its queue is empty, and a step's
    next stage may be enqueued after that check)."""
    for _ in range(6):
        await run_worker()
        body: dict[str, Any] = (await client.get(url)).json()
        if body["is_terminal"]:
            return body
    raise AssertionError(f"the workflow did not end: {body}")


async def test_a_chain_runs_through_a_worker(client: httpx.AsyncClient, run_worker: RunWorker) -> None:
    response = await client.post(
        "/workflows", json=chain_spec(ADD, {"task": "wf_double"}, {"task": "wf_square"})
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted == {
        "workflow_id": accepted["workflow_id"],
        "status_url": f"http://test/workflows/{accepted['workflow_id']}",
    }
    assert response.headers["location"] == accepted["status_url"]
    body = await run_until_ended(client, run_worker, accepted["status_url"])
    assert set(body) == {
        "workflow_id",
        "type",
        "status",
        "is_terminal",
        "created_at",
        "cancelled_at",
        "steps",
        "result",
        "error",
        "owner",
    }
    assert (body["status"], body["type"], body["result"], body["error"]) == (
        "succeeded",
        "chain",
        {"n": 100},
        None,
    )
    assert [(s["path"], s["task"], s["status"], s["result"]) for s in body["steps"]] == [
        ("steps[0]", "wf_add", "succeeded", {"n": 5}),
        ("steps[1]", "wf_double", "succeeded", {"n": 10}),
        ("steps[2]", "wf_square", "succeeded", {"n": 100}),
    ]
    for step in body["steps"]:
        job_status = (await client.get(f"/jobs/{step['job_id']}")).json()
        assert (job_status["status"], job_status["workflow_id"]) == ("succeeded", accepted["workflow_id"])


async def test_a_failing_middle_step_cancels_the_rest(
    client: httpx.AsyncClient, run_worker: RunWorker
) -> None:
    accepted = (
        await client.post(
            "/workflows", json=chain_spec(ADD, {"task": "wf_fail_always"}, {"task": "wf_double"})
        )
    ).json()
    body = await run_until_ended(client, run_worker, accepted["status_url"])
    assert body["status"] == "failed"
    assert [s["status"] for s in body["steps"]] == ["succeeded", "failed", "cancelled"]
    assert body["error"] == {
        "type": "TaskError",
        "message": "step steps[1] (wf_fail_always) failed: cannot take 5",
        "step": "steps[1]",
        "task": "wf_fail_always",
        "job_id": body["steps"][1]["job_id"],
        "detail": None,
    }
    assert (await client.get(f"/jobs/{body['steps'][2]['job_id']}")).status_code == 404
    refused = await client.delete(accepted["status_url"])
    assert refused.status_code == 409
    assert refused.json() == {
        "error": "workflow_not_cancellable",
        "message": f"workflow {accepted['workflow_id']} has already ended (failed); only unfinished workflows can be cancelled",
        "workflow_id": accepted["workflow_id"],
        "status": "failed",
    }


async def test_a_step_of_a_cancelled_workflow_ends_cancelled_when_it_starts(
    workflows: Workflows, job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    workflow_id = await workflows.create(Workflow.group(wf_total.step(Values([Value(n=1)]))))
    # the flag alone, as when DELETE raced the enqueue of this stage
    await arq_redis.hset(f"unit:workflow:{workflow_id}", "cancelled", "1")
    await run_worker()
    step = (await workflows.status(workflow_id)).steps[0]
    assert (await job_client.status(step.job_id)).status is JobState.CANCELLED
    assert await arq_redis.get(f"unit:wf-calls:{step.job_id}") is None  # the task never ran


async def test_a_step_whose_workflow_cannot_advance_fails_its_attempt(
    workflows: Workflows,
    job_client: JobClient,
    run_worker: RunWorker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refused(self: Workflows, ref: StepRef, output: Any) -> None:
        # an error that is no outage (an outage is waited out, then the job runs again)
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    monkeypatch.setattr(Workflows, "advance", refused)
    workflow_id = await workflows.create(Workflow.chain(wf_add.step(Pair(a=2, b=3)), wf_double.step()))
    await run_worker()
    status = await workflows.status(workflow_id)
    # not recorded as succeeded: its policy decides (another attempt would advance the workflow)
    assert [s.status for s in status.steps] == [JobState.FAILED, JobState.CANCELLED]
    assert status.error is not None
    assert (status.error.type, status.error.message) == (
        "ResponseError",
        "step steps[0] (wf_add) failed: WRONGTYPE Operation against a key holding the wrong kind of value",
    )


# ---------------------------------------------------------------- HTTP answers


async def test_a_spec_mistake_is_422_and_enqueues_nothing(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    spec = chain_spec(ADD, {"task": "wf_double", "queue": "urgent"})
    response = await client.post("/workflows", json=spec)
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_workflow",
        "message": "invalid workflow: steps[1] (wf_double): no queue named 'urgent' is configured; the queues are high, default, low",
        "path": "steps[1]",
        "task": "wf_double",
        "queue": "urgent",
        "queues": ["high", "default", "low"],
    }
    response = await client.post(
        "/workflows", json={"type": "group", "steps": [{"task": "wf_square", "input": {}}]}
    )
    assert response.status_code == 422
    assert response.json() == {
        "error": "invalid_workflow",
        "message": "invalid workflow: steps[0] (wf_square): invalid input for task 'wf_square': n: Field required",
        "path": "steps[0]",
        "task": "wf_square",
        "detail": [{"loc": ["n"], "msg": "Field required", "type": "missing"}],
    }
    assert await arq_redis.keys("*") == []


async def test_unknown_workflow_is_404(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/workflows/nope"), await client.delete("/workflows/nope")):
        assert response.status_code == 404
        assert response.json() == {
            "error": "workflow_not_found",
            "message": "no workflow with id 'nope' (unknown, or it has expired)",
            "workflow_id": "nope",
        }


async def test_delete_answers_the_cancelled_workflow(client: httpx.AsyncClient) -> None:
    accepted = (await client.post("/workflows", json=chain_spec(ADD, {"task": "wf_double"}))).json()
    response = await client.delete(accepted["status_url"])
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], [s["status"] for s in body["steps"]]) == ("cancelled", ["cancelled", "cancelled"])
    assert (await client.get(accepted["status_url"])).json()["status"] == "cancelled"
    assert (await client.delete(accepted["status_url"])).status_code == 409


async def test_a_workflow_over_max_workflow_steps_is_refused_before_anything_is_stored(
    arq_redis: ArqRedis, registry: TaskRegistry
) -> None:
    workflows = Workflows(JobClient(arq_redis, make_settings(max_workflow_steps=4), registry))
    too_many = [
        Workflow.chord([noop.step(NoopInput(value=n)) for n in range(4)], noop.step()),  # the callback counts
        Workflow.chain(noop.step(NoopInput()), group(noop.step(), noop.step(), noop.step()), noop.step()),
        Workflow.group(*(noop.step(NoopInput(value=n)) for n in range(5))),
    ]
    for workflow in too_many:
        with pytest.raises(InvalidWorkflowError) as refused:
            await workflows.create(workflow)
        assert str(refused.value) == (
            "invalid workflow: it has 5 steps (group members and callbacks included), more than the 4 a "
            "workflow may have (JOBS_MAX_WORKFLOW_STEPS)"
        )
        assert refused.value.details() == {"path": None, "steps": 5, "limit": 4}
    assert await arq_redis.keys("*") == []
    await workflows.create(Workflow.chord([noop.step(NoopInput(value=n)) for n in range(3)], noop.step()))
    assert await arq_redis.zcard("unit:queue:default") == 3


def test_a_json_workflow_is_counted_before_its_steps_are_read(registry: TaskRegistry) -> None:
    spec = {
        "type": "chain",
        "steps": [
            {"task": "noop"},
            {"type": "group", "steps": [{"task": "nope"}, {"task": "noop"}, {"task": "noop"}]},
            {"task": "noop", "input": "not an object"},
        ],
    }
    with pytest.raises(InvalidWorkflowError, match=r"it has 5 steps .* more than the 4 a workflow may have"):
        Workflow.from_json(spec, registry, max_steps=4)
    with pytest.raises(InvalidWorkflowError, match="no task named 'nope'"):  # within the limit: read
        Workflow.from_json(spec, registry, max_steps=5)
    chord = {"type": "chord", "steps": [{"task": "noop"}] * 3, "callback": {"task": "noop"}}
    with pytest.raises(InvalidWorkflowError, match="it has 4 steps"):
        Workflow.from_json(chord, registry, max_steps=3)
    assert Workflow.from_json(chord, registry, max_steps=4).size == 4


async def test_post_workflows_over_the_limit_is_422_naming_the_count(client: httpx.AsyncClient) -> None:
    steps = [{"task": "noop"}] * 1001  # JOBS_MAX_WORKFLOW_STEPS: 1000 by default
    response = await client.post("/workflows", json={"type": "group", "steps": steps})
    assert (response.status_code, response.json()) == (
        422,
        {
            "error": "invalid_workflow",
            "message": "invalid workflow: it has 1001 steps (group members and callbacks included), more "
            "than the 1000 a workflow may have (JOBS_MAX_WORKFLOW_STEPS)",
            "path": None,
            "steps": 1001,
            "limit": 1000,
        },
    )


def test_one_chain_or_group_still_takes_at_most_1000_steps_when_the_limit_is_raised(
    registry: TaskRegistry,
) -> None:
    spec = {"type": "group", "steps": [{"task": "noop"}] * 1001}  # one script answer per finished stage
    with pytest.raises(
        InvalidWorkflowError, match=r"^invalid workflow: steps: a group takes at most 1000 steps"
    ):
        Workflow.from_json(spec, registry, max_steps=5000)
