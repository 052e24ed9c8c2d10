"""Workflows over HTTP with real workers: chain, group and chord run to their exact results, a chord's
callback runs once when its members finish together on two workers, a failing step or a result that
does not fit stops the rest, DELETE cancels, and spec mistakes enqueue nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from .conftest import Service, start_worker, wait_for_status
from .test_worker_loss import worker_of

ADD = {"task": "wf_add", "input": {"a": 2, "b": 3}}


def ended(body: dict[str, Any]) -> bool:
    return bool(body["is_terminal"])


async def start(http: httpx.AsyncClient, spec: dict[str, Any]) -> dict[str, Any]:
    response = await http.post("/workflows", json=spec)
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    assert set(accepted) == {"workflow_id", "status_url"}
    assert response.headers["location"] == accepted["status_url"]
    return accepted


async def test_chain_of_three_passes_data_through(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await start(
        http, {"type": "chain", "steps": [ADD, {"task": "wf_double"}, {"task": "wf_square"}]}
    )
    body = await wait_for_status(http, accepted["status_url"], ended)
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
        job = await wait_for_status(http, f"/jobs/{step['job_id']}", ended)
        assert (job["status"], job["result"], job["workflow_id"]) == (
            "succeeded",
            step["result"],
            accepted["workflow_id"],
        )


async def test_group_of_twenty_returns_results_in_order(http: httpx.AsyncClient, worker: Service) -> None:
    # the first members take longest: they finish last, their results still come first
    steps = [{"task": "wf_square", "input": {"n": n, "delay_s": (19 - n) * 0.02}} for n in range(20)]
    accepted = await start(http, {"type": "group", "steps": steps})
    body = await wait_for_status(http, accepted["status_url"], ended)
    assert (body["status"], body["type"]) == ("succeeded", "group")
    assert body["result"] == [{"n": n * n} for n in range(20)]
    assert [s["path"] for s in body["steps"]] == [f"steps[{n}]" for n in range(20)]


async def test_chord_of_fifty_on_two_workers_calls_back_once(
    http: httpx.AsyncClient,
    worker: Service,
    redis_url: str,
    key_prefix: str,
    redis_client: redis.Redis,
    tmp_path: Path,
) -> None:
    # two workers of their own serve the members' queue, 25 jobs at a time each: both take a share, and
    # each one's members finish together
    pool: list[Service] = []
    worker_ids = set()
    try:
        for name in ("members-1", "members-2"):
            service, worker_id = start_worker(
                redis_url,
                key_prefix,
                tmp_path,
                name,
                JOBS_QUEUE_NAME="lifecycle",
                JOBS_WORKER_CONCURRENCY="25",
            )
            pool.append(service)
            worker_ids.add(worker_id)
        steps = [
            {"task": "wf_square", "input": {"n": n, "delay_s": 0.5}, "queue": "lifecycle"} for n in range(50)
        ]
        accepted = await start(http, {"type": "chord", "steps": steps, "callback": {"task": "wf_total"}})
        body = await wait_for_status(http, accepted["status_url"], ended, timeout_s=30)
    finally:
        for service in pool:
            service.stop()
    assert (body["status"], body["type"]) == ("succeeded", "chord")
    assert body["result"] == {"count": 50, "total": sum(n * n for n in range(50))}
    callback = body["steps"][-1]
    assert (callback["path"], callback["task"], callback["result"]) == (
        "callback",
        "wf_total",
        body["result"],
    )
    assert redis_client.get(f"{key_prefix}:wf-calls:{callback['job_id']}") == b"1"
    assert {worker_of(redis_client, key_prefix, s["job_id"]) for s in body["steps"][:50]} == worker_ids


async def test_failing_middle_step_cancels_the_rest(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await start(
        http, {"type": "chain", "steps": [ADD, {"task": "wf_fail_always"}, {"task": "wf_double"}]}
    )
    body = await wait_for_status(http, accepted["status_url"], ended)
    assert body["status"] == "failed"
    assert [(s["task"], s["status"]) for s in body["steps"]] == [
        ("wf_add", "succeeded"),
        ("wf_fail_always", "failed"),
        ("wf_double", "cancelled"),
    ]
    assert body["steps"][1]["error"] == {"type": "TaskError", "message": "cannot take 5"}
    assert body["error"] == {
        "type": "TaskError",
        "message": "step steps[1] (wf_fail_always) failed: cannot take 5",
        "step": "steps[1]",
        "task": "wf_fail_always",
        "job_id": body["steps"][1]["job_id"],
        "detail": None,
    }
    never = await http.get(f"/jobs/{body['steps'][2]['job_id']}")  # never enqueued, so never run
    assert never.status_code == 404


async def test_output_that_does_not_fit_fails_naming_both_steps(
    http: httpx.AsyncClient, worker: Service
) -> None:
    accepted = await start(http, {"type": "chain", "steps": [ADD, {"task": "wf_greet"}]})
    body = await wait_for_status(http, accepted["status_url"], ended)
    assert body["status"] == "failed"
    assert [s["status"] for s in body["steps"]] == ["succeeded", "cancelled"]
    assert body["error"] == {
        "type": "StepInputMismatch",
        "message": "step steps[1] (wf_greet) cannot take the result of step steps[0] (wf_add): "
        "invalid input for task 'wf_greet': name: Field required",
        "step": "steps[1]",
        "task": "wf_greet",
        "job_id": None,
        "detail": [{"loc": ["name"], "msg": "Field required", "type": "missing"}],
    }
    assert (await http.get(f"/jobs/{body['steps'][1]['job_id']}")).status_code == 404


async def test_delete_cancels_a_running_workflow(http: httpx.AsyncClient, worker: Service) -> None:
    accepted = await start(
        http,
        {
            "type": "chain",
            "steps": [
                {"task": "wf_double", "input": {"n": 1, "delay_s": 30}},
                {"task": "wf_square"},
                {"task": "wf_square"},
            ],
        },
    )
    url = accepted["status_url"]
    running = await wait_for_status(http, url, lambda b: b["steps"][0]["status"] == "running", timeout_s=10)
    assert running["status"] == "running"
    response = await http.delete(url)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["is_terminal"]) == ("cancelled", True)
    assert body["cancelled_at"] is not None
    assert [s["status"] for s in body["steps"][1:]] == ["cancelled", "cancelled"]
    # the running step is stopped by its worker within about a second
    body = await wait_for_status(http, url, lambda b: b["steps"][0]["status"] == "cancelled", timeout_s=5)
    assert (body["status"], body["result"]) == ("cancelled", None)
    first = (await http.get(f"/jobs/{body['steps'][0]['job_id']}")).json()
    assert (first["status"], first["result"]) == ("cancelled", None)
    for step in body["steps"][1:]:
        assert (await http.get(f"/jobs/{step['job_id']}")).status_code == 404
    again = await http.delete(url)
    assert again.status_code == 409
    assert (again.json()["error"], again.json()["status"]) == ("workflow_not_cancellable", "cancelled")


SPEC_MISTAKES = [
    (
        {"type": "chain", "steps": [ADD, {"task": "nope"}]},
        {"path": "steps[1]", "task": "nope"},
        "invalid workflow: steps[1] (nope): no task named 'nope' is registered",
    ),
    (
        {
            "type": "group",
            "steps": [{"task": "wf_square", "input": {"n": 1}}, {"task": "wf_square", "input": {"n": "x"}}],
        },
        {
            "path": "steps[1]",
            "task": "wf_square",
            "detail": [
                {
                    "loc": ["n"],
                    "msg": "Input should be a valid integer, unable to parse string as an integer",
                    "type": "int_parsing",
                }
            ],
        },
        "invalid workflow: steps[1] (wf_square): invalid input for task 'wf_square': n: Input should be a valid integer, unable to parse string as an integer",
    ),
    (
        {"type": "chain", "steps": [ADD, {"type": "group", "steps": []}]},
        {"path": "steps[1]"},
        "invalid workflow: steps[1]: a group needs at least one step",
    ),
    (
        {"type": "chain", "steps": [ADD, {"type": "group", "steps": [{"type": "group", "steps": [ADD]}]}]},
        {"path": "steps[1].steps[0]"},
        "invalid workflow: steps[1].steps[0]: groups nest only in a chain, one level deep",
    ),
    (
        {"type": "chord", "steps": [ADD], "callback": {"task": "wf_double", "input": {"n": 1}}},
        {"path": "callback", "task": "wf_double"},
        "invalid workflow: callback (wf_double): only the steps of a workflow's first stage take an input; this one is given the previous step's result (or a group's list of results): remove its input",
    ),
    (
        {"type": "chain", "steps": [ADD, {"task": "wf_double", "queue": "nowhere"}]},
        {
            "path": "steps[1]",
            "task": "wf_double",
            "queue": "nowhere",
            "queues": ["high", "default", "low", "lifecycle"],
        },
        "invalid workflow: steps[1] (wf_double): no queue named 'nowhere' is configured; the queues are high, default, low, lifecycle",
    ),
]


@pytest.mark.parametrize(("spec", "fields", "message"), SPEC_MISTAKES)
async def test_spec_mistakes_are_422_with_nothing_enqueued(
    http: httpx.AsyncClient,
    redis_client: redis.Redis,
    key_prefix: str,
    spec: dict[str, Any],
    fields: dict[str, Any],
    message: str,
) -> None:
    def written() -> tuple[int, int]:
        workflows = sum(1 for _ in redis_client.scan_iter(match=f"{key_prefix}:workflow:*", count=1000))
        jobs = redis_client.zcard(f"{key_prefix}:index:all")
        assert isinstance(jobs, int)
        return workflows, jobs

    before = written()
    response = await http.post("/workflows", json=spec)
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_workflow", "message": message, **fields}
    assert written() == before
