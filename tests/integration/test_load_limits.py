"""Size and load limits end to end: the real API under uvicorn (and a real worker where it matters) on a
real Redis, over real HTTP — request bodies over JOBS_MAX_REQUEST_BYTES (413), workflows over
JOBS_MAX_WORKFLOW_STEPS and schedules beyond JOBS_MAX_SCHEDULE_AHEAD_S (422), back-pressure past
JOBS_QUEUE_MAX_PENDING (429), the API pool's JOBS_REDIS_MAX_CONNECTIONS, and a Redis out of memory
(reads 200, writes 503; a warning when Redis may evict keys)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError

from arq_jobs._config import Settings
from arq_jobs._connection import create_arq

from .conftest import (
    Service,
    delete_prefix,
    enqueue_job,
    http_ok,
    service_env,
    start_api,
    start_worker,
    terminal,
    wait_for_status,
)
from .redis_servers import redis_server

TASK_PACKAGES = "workers.tasks,tests.integration.tasks,tests.integration.sized_tasks"


def own_prefix() -> str:
    return f"it-limits-{uuid.uuid4().hex[:8]}"


def api_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return service_env(redis_url, prefix, JOBS_TASK_PACKAGES=TASK_PACKAGES, **extra)


def serve(env: dict[str, str], log_dir: Path) -> tuple[Service, str]:
    service, base = start_api(env, log_dir)
    service.wait_until(http_ok(f"{base}/health/live"))
    return service, base


@pytest.fixture(scope="module")
def limited_api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """An API of its own (key prefix and all) with small limits; its base URL and key prefix."""
    prefix = own_prefix()
    env = api_env(
        redis_url,
        prefix,
        JOBS_MAX_REQUEST_BYTES="4096",
        JOBS_MAX_WORKFLOW_STEPS="5",
        JOBS_MAX_SCHEDULE_AHEAD_S="3600",
        JOBS_QUEUE_MAX_PENDING="high=5,low=1",
    )
    service, base = serve(env, tmp_path_factory.mktemp("limited-api"))
    try:
        yield base, prefix
    finally:
        service.stop()
        delete_prefix(redis_url, prefix)


@pytest.fixture
async def client(limited_api: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited_api[0], timeout=10) as http:
        yield http


# --- 413 payload_too_large -----------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_before_it_is_read(client: httpx.AsyncClient) -> None:
    big = {"value": "x" * 5000}
    too_large = {
        "error": "payload_too_large",
        "message": "the request body is larger than the 4096 bytes this API accepts; nothing was done",
        "limit": 4096,
    }
    declared = await client.post("/jobs/noop", json=big)  # Content-Length: 5000-odd
    assert (declared.status_code, declared.json()) == (413, too_large)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"value": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    chunked = await client.post("/jobs/noop", content=chunks(), headers={"content-type": "application/json"})
    assert (chunked.status_code, chunked.json()) == (413, too_large)
    steps = [{"task": "noop", "input": {"value": "x" * 1000}} for _ in range(5)]
    workflow = await client.post("/workflows", json={"type": "group", "steps": steps})
    assert (workflow.status_code, workflow.json()) == (413, too_large)

    fits = await client.post("/jobs/noop", json={"value": "x" * 4000})
    assert fits.status_code == 202


async def test_a_tasks_own_max_input_bytes_is_its_routes_limit(client: httpx.AsyncClient) -> None:
    response = await client.post("/jobs/sized_echo", json={"text": "x" * 300})
    assert (response.status_code, response.json()) == (
        413,
        {
            "error": "payload_too_large",
            "message": "the request body is larger than the 256 bytes task 'sized_echo' accepts (its "
            "max_input_bytes); nothing was done",
            "limit": 256,
            "task": "sized_echo",
        },
    )
    assert (await client.post("/jobs/sized_echo", json={"text": "x" * 200})).status_code == 202
    assert (await client.post("/jobs/noop", json={"value": "x" * 300})).status_code == 202

    # a workflow step is held to the same limit: its input as stored, not the whole request
    def flow(size: int) -> dict[str, Any]:
        return {"type": "chain", "steps": [{"task": "sized_echo", "input": {"text": "x" * size}}]}

    refused = await client.post("/workflows", json=flow(300))
    assert refused.status_code == 422
    assert (refused.json()["error"], refused.json()["path"], refused.json()["task"]) == (
        "invalid_workflow",
        "steps[0]",
        "sized_echo",
    )
    assert (
        "its input is 311 bytes as JSON, more than the task's max_input_bytes (256)"
        in refused.json()["message"]
    )
    assert (await client.post("/workflows", json=flow(200))).status_code == 202


# --- 422: workflow steps, schedule ahead ---------------------------------------------------------


async def test_a_workflow_over_max_steps_is_422_naming_the_count(client: httpx.AsyncClient) -> None:
    spec: dict[str, Any] = {
        "type": "chord",
        "steps": [{"task": "wf_square", "input": {"n": n}} for n in range(5)],
        "callback": {"task": "wf_total"},
    }
    response = await client.post("/workflows", json=spec)
    assert (response.status_code, response.json()) == (
        422,
        {
            "error": "invalid_workflow",
            "message": "invalid workflow: it has 6 steps (group members and callbacks included), more "
            "than the 5 a workflow may have (JOBS_MAX_WORKFLOW_STEPS)",
            "path": None,
            "steps": 6,
            "limit": 5,
        },
    )
    spec["steps"] = spec["steps"][:4]
    assert (await client.post("/workflows", json=spec)).status_code == 202


async def test_scheduling_beyond_max_schedule_ahead_is_422(client: httpx.AsyncClient) -> None:
    far = await client.post("/jobs/noop", params={"delay": 3601}, json={})
    assert far.status_code == 422
    assert far.json()["detail"] == [
        {
            "loc": ["query", "delay"],
            "msg": "Input should be less than or equal to 3600",
            "type": "less_than_equal",
        }
    ]
    run_at = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    later = await client.post("/jobs/noop", params={"run_at": run_at}, json={})
    assert (later.status_code, later.json()) == (
        422,
        {
            "error": "invalid_schedule",
            "message": "run_at must be at most 3600 seconds ahead (JOBS_MAX_SCHEDULE_AHEAD_S)",
            "fields": ["run_at"],
        },
    )
    within = await client.post("/jobs/noop", params={"delay": 3600}, json={})
    assert (within.status_code, within.json()["status"]) == (202, "scheduled")
    assert (await client.delete(within.headers["location"])).status_code == 200  # out of the way


# --- 429 queue_full ------------------------------------------------------------------------------


def queue_full(queue: str, pending: int, limit: int) -> dict[str, Any]:
    return {
        "error": "queue_full",
        "message": f"queue {queue!r} already holds {pending} jobs waiting to start (its limit is {limit}): "
        "the job was not queued; try again in 5 s",
        "queue": queue,
        "pending": pending,
        "limit": limit,
    }


async def test_a_full_queue_refuses_enqueues_past_its_limit_even_all_at_once(
    client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(
        *(client.post("/jobs/noop", params={"queue": "high"}, json={"value": n}) for n in range(20))
    )
    accepted = [answer for answer in answers if answer.status_code == 202]
    refused = [answer for answer in answers if answer.status_code != 202]
    assert (len(accepted), len(refused)) == (5, 15)
    assert {(answer.status_code, answer.headers["retry-after"]) for answer in refused} == {(429, "5")}
    assert [answer.json() for answer in refused] == [queue_full("high", 5, 5)] * 15

    keyed = {"params": {"queue": "high"}, "json": {}, "headers": {"Idempotency-Key": "queue-full-1"}}
    first = await client.post("/jobs/noop", **keyed)  # type: ignore[arg-type]
    assert (first.status_code, first.json()) == (429, queue_full("high", 5, 5))
    chain = {"type": "chain", "steps": [{"task": "noop", "queue": "high"}, {"task": "noop"}]}
    flow = await client.post("/workflows", json=chain)
    assert (flow.status_code, flow.json()) == (429, queue_full("high", 5, 5))

    assert (await client.delete(accepted[0].headers["location"])).status_code == 200  # room for one
    # the refused key left no claim behind: the same request now makes its job, then replays it
    second = await client.post("/jobs/noop", **keyed)  # type: ignore[arg-type]
    assert (second.status_code, second.json()["idempotent_replay"]) == (202, False)
    third = await client.post("/jobs/noop", **keyed)  # type: ignore[arg-type]
    assert (third.status_code, third.json()["job_id"]) == (200, second.json()["job_id"])
    queues = {q["name"]: q for q in (await client.get("/queues")).json()}
    assert (queues["high"]["pending"], queues["high"]["cancelled"]) == (5, 1)


async def test_a_worker_enqueues_a_workflows_next_step_into_a_full_queue(
    client: httpx.AsyncClient, limited_api: tuple[str, str], redis_url: str, tmp_path: Path
) -> None:
    assert (await client.post("/jobs/noop", params={"queue": "low"}, json={})).status_code == 202
    refused = await client.post("/jobs/noop", params={"queue": "low"}, json={})
    assert (refused.status_code, refused.json()) == (429, queue_full("low", 1, 1))
    chain = {
        "type": "chain",
        "steps": [{"task": "noop", "input": {"value": 7}}, {"task": "noop", "queue": "low"}],
    }
    created = await client.post("/workflows", json=chain)  # its first stage goes to `default`: no limit
    assert created.status_code == 202
    planned = (await client.get(created.headers["location"])).json()["steps"]
    worker, _ = start_worker(
        redis_url, limited_api[1], tmp_path, "default-worker", JOBS_TASK_PACKAGES=TASK_PACKAGES
    )
    try:
        deadline = time.monotonic() + 20
        step = await client.get(f"/jobs/{planned[1]['job_id']}")
        while step.status_code == 404 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            step = await client.get(f"/jobs/{planned[1]['job_id']}")
        # the later step is work already accepted: enqueued past the limit, waiting for a `low` worker
        assert (step.status_code, step.json()["status"], step.json()["queue"]) == (200, "pending", "low")
    finally:
        worker.stop()
    queues = {q["name"]: q for q in (await client.get("/queues")).json()}
    assert queues["low"]["pending"] == 2


# --- JOBS_REDIS_MAX_CONNECTIONS ------------------------------------------------------------------


async def test_the_api_pool_waits_for_a_free_connection_then_gives_up(redis_url: str) -> None:
    prefix = own_prefix()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=redis_url, key_prefix=prefix, redis_max_connections=2, redis_timeout_s=1
    )
    pool = create_arq(settings)
    try:
        async with AsyncExitStack() as held:
            for _ in range(2):  # a WATCHing pipeline keeps its connection until it ends
                pipe = await held.enter_async_context(pool.pipeline(transaction=True))
                await pipe.watch(f"{prefix}:watched")

            started = time.monotonic()
            with pytest.raises(RedisConnectionError, match="No connection available"):
                await pool.ping()
            assert 1.0 <= time.monotonic() - started < 1.5  # waited JOBS_REDIS_TIMEOUT_S for one

            async def release_one() -> None:
                await asyncio.sleep(0.3)
                await held.aclose()

            started = time.monotonic()
            releasing = asyncio.create_task(release_one())
            assert await pool.ping() is True  # waits for a connection to come back, then answers
            assert 0.25 <= time.monotonic() - started < 1.0
            await releasing
        assert len(pool.connection_pool._in_use_connections) == 0  # type: ignore[attr-defined]
    finally:
        await pool.aclose()
        await pool.connection_pool.disconnect()


# --- Redis out of memory -------------------------------------------------------------------------


def fill(url: str, prefix: str) -> None:
    """Put Redis over its maxmemory (a Redis of the test's own): 16 MiB of keys of our own, written in
    64 KiB values (no big query buffer that Redis frees later), then maxmemory 2 MiB below what it uses,
    so that every write is refused with OOM."""
    client = redis.Redis.from_url(url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for n in range(256):
                pipe.set(f"{prefix}:filler:{n}", b"x" * (64 << 10))
            pipe.execute()
        memory: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
        used = int(memory["used_memory"])
        client.config_set("maxmemory", used - (2 << 20))
        with pytest.raises(OutOfMemoryError):
            client.set(f"{prefix}:one-more", b"x")
    finally:
        client.close()


async def test_out_of_memory_redis_still_answers_reads_and_refuses_writes_with_503(tmp_path: Path) -> None:
    prefix = own_prefix()
    with redis_server(
        tmp_path / "redis", "--maxmemory", "32mb", "--maxmemory-policy", "noeviction"
    ) as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        env = api_env(url, prefix)
        api, base = serve(env, tmp_path)
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                # a dead letter (a worker ran a job that failed for good), and a job waiting
                worker, _ = start_worker(url, prefix, tmp_path, "worker", JOBS_TASK_PACKAGES=TASK_PACKAGES)
                try:
                    failed = await enqueue_job(http, "fail", {"permanent": True})
                    await wait_for_status(http, failed["status_url"], terminal)
                finally:
                    worker.stop()
                waiting = await enqueue_job(http, "noop", {"value": 1})
                flow = await http.post("/workflows", json={"type": "chain", "steps": [{"task": "noop"}]})
                assert flow.status_code == 202
                step = (await http.get(flow.headers["location"])).json()["steps"][0]["job_id"]
                reads = [
                    f"/jobs/{waiting['job_id']}",
                    flow.headers["location"].removeprefix(base),
                    f"/jobs/{failed['job_id']}",
                    "/jobs",
                    "/dead-letters",
                    f"/dead-letters/{failed['job_id']}",
                    "/queues",
                    "/schedules",
                    "/tasks",
                    "/health/ready",
                ]
                before = {path: await http.get(path) for path in reads}
                assert {path: answer.status_code for path, answer in before.items()} == dict.fromkeys(
                    reads, 200
                )
                assert [item["job_id"] for item in before["/dead-letters"].json()["items"]] == [
                    failed["job_id"]
                ]

                fill(url, prefix)
                for path in reads:  # reads go on, with the same answers
                    answer = await http.get(path)
                    assert (path, answer.status_code) == (path, 200), answer.text
                    if path not in ("/queues", "/health/ready"):  # these carry the time
                        assert answer.json() == before[path].json(), path
                queues = {q["name"]: q["pending"] for q in (await http.get("/queues")).json()}
                assert queues["default"] == 2

                out_of_memory = {
                    "error": "redis_unavailable",
                    "message": "Redis is out of memory (maxmemory): it refuses writes until memory is freed, "
                    "so the request was not completed; reads still work. Try again later.",
                    "reason": "out_of_memory",
                }
                writes = [
                    await http.post("/jobs/noop", json={"value": 2}),
                    await http.post("/jobs/noop", json={}, headers={"Idempotency-Key": "oom-1"}),
                    await http.post("/workflows", json={"type": "group", "steps": [{"task": "noop"}]}),
                    await http.post(f"/dead-letters/{failed['job_id']}/retry"),
                ]
                assert [(w.status_code, w.json()) for w in writes] == [(503, out_of_memory)] * 4
                assert (await http.get(f"/dead-letters/{failed['job_id']}")).status_code == 200  # kept
                listed = (await http.get("/jobs")).json()["items"]
                assert [item["job_id"] for item in listed] == [step, waiting["job_id"], failed["job_id"]]

                freeing = redis.Redis.from_url(url)
                freeing.delete(*(f"{prefix}:filler:{n}" for n in range(256)))  # memory freed: writes work
                freeing.close()
                assert (await http.post("/jobs/noop", json={"value": 3})).status_code == 202
        finally:
            api.stop()
        assert "maxmemory-policy" not in api.log()  # noeviction: nothing to warn about


async def test_api_and_worker_warn_at_start_up_when_redis_may_evict_jobs(tmp_path: Path) -> None:
    prefix = own_prefix()
    with redis_server(
        tmp_path / "redis", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"
    ) as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        api, _ = serve(api_env(url, prefix), tmp_path)
        worker, worker_id = start_worker(url, prefix, tmp_path, "worker", JOBS_TASK_PACKAGES=TASK_PACKAGES)
        try:
            warning = (
                "Redis's maxmemory-policy is allkeys-lru, not noeviction: when Redis reaches maxmemory it "
                "evicts keys, silently dropping queued jobs, their records and results"
            )
            api.wait_until(lambda: warning in api.log(), timeout_s=10)
            assert f"API: {warning}" in api.log()
            assert f"worker {worker_id}: {warning}" in worker.log()
        finally:
            worker.stop()
            api.stop()
