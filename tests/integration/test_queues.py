"""Named queues end to end: one worker pool per queue, each started by its own arq command
(`workers.WorkerSettings` serves `default`, `workers.HighWorkerSettings` `high`,
`workers.LowWorkerSettings` `low`); `?queue=` over HTTP; a `high` job starts within a second
behind 10,000 pending `default` jobs."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import TaskRegistry
from tests.integration.tasks.probes import nap
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop

from .conftest import (
    ARQ,
    QUEUES,
    ROOT,
    Service,
    delete_prefix,
    http_ok,
    service_env,
    start_api,
    start_worker,
    terminal,
    wait_for_status,
)

# the default pool runs one job at a time: a long `nap` holds it while the backlog waits
CONCURRENCY = "default=1,high=5"
POOLS = {
    "default": "workers.WorkerSettings",
    "high": "workers.HighWorkerSettings",
    "low": "workers.LowWorkerSettings",
}
BACKLOG = 10_000
STARTS_WITHIN_S = 1.0


@dataclass
class Stack:
    redis_url: str
    prefix: str
    base: str
    workers: dict[str, str]  # queue -> worker id

    def env(self, **extra: str) -> dict[str, str]:
        return service_env(self.redis_url, self.prefix, JOBS_QUEUE_CONCURRENCY=CONCURRENCY, **extra)


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The API and a pool per queue under a key prefix of their own (the backlog stays out of the
    session's prefix and its worker), all deleted afterwards."""
    prefix = f"it-queues-{uuid.uuid4().hex[:8]}"
    log_dir = tmp_path_factory.mktemp("queues")
    services: list[Service] = []
    try:
        env = service_env(redis_url, prefix, JOBS_QUEUE_CONCURRENCY=CONCURRENCY)
        api, base = start_api(env, log_dir)
        services.append(api)
        api.wait_until(http_ok(f"{base}/health/ready"))
        workers = {}
        for queue, pool in POOLS.items():
            service, worker_id = start_worker(
                redis_url, prefix, log_dir, f"worker-{queue}", pool, JOBS_QUEUE_CONCURRENCY=CONCURRENCY
            )
            services.append(service)
            workers[queue] = worker_id
        yield Stack(redis_url, prefix, base, workers)
    finally:
        for service in reversed(services):
            service.stop()
        delete_prefix(redis_url, prefix)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base, timeout=10) as client:
        yield client


@pytest.fixture
async def jobs(stack: Stack) -> AsyncIterator[JobClient]:
    """A JobClient of the stack's deployment, for enqueuing the backlog without HTTP."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=stack.redis_url, key_prefix=stack.prefix, queues=QUEUES.split(",")
    )
    pool = ConnectionPool.from_url(stack.redis_url)
    arq_redis = ArqRedis(pool, job_serializer=dumps, job_deserializer=loads)
    yield JobClient(arq_redis, settings, TaskRegistry([*shipped, nap]))
    await arq_redis.aclose()
    await pool.disconnect()


def seconds(later: str | None, earlier: str | None) -> float:
    assert later is not None and earlier is not None
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def queue_counts(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {q["name"]: q for q in (await http.get("/queues")).json()}


async def test_each_pool_serves_its_queue_with_its_own_concurrency(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    alive = {w["worker_id"]: w for w in (await http.get("/workers")).json() if w["state"] == "alive"}
    assert {
        queue: (alive[wid]["queues"], alive[wid]["concurrency"]) for queue, wid in stack.workers.items()
    } == {
        "default": (["default"], 1),
        "high": (["high"], 5),
        "low": (["low"], 100),
    }


def test_each_pool_answers_its_own_health_check(stack: Stack) -> None:
    """Each pool writes its own health-check key, which `arq --check <pool>` reads."""
    for pool in POOLS.values():
        check = subprocess.run(
            [ARQ, "--check", pool], cwd=ROOT, env=stack.env(), capture_output=True, timeout=60
        )
        assert check.returncode == 0, (pool, check.stdout, check.stderr)


async def test_a_high_job_starts_within_a_second_behind_10000_pending_default_jobs(
    stack: Stack, http: httpx.AsyncClient, jobs: JobClient
) -> None:
    held = await http.post("/jobs/nap", json={"seconds": 50})  # the default pool's only slot
    await wait_for_status(http, held.json()["status_url"], lambda b: b["status"] == "running")
    started = time.monotonic()
    for first in range(0, BACKLOG, 1000):
        await asyncio.gather(*(jobs.enqueue(noop, NoopInput(value=n)) for n in range(first, first + 1000)))
    print(f"\n{BACKLOG} default jobs enqueued in {time.monotonic() - started:.2f} s")
    assert (await queue_counts(http))["default"]["pending"] == BACKLOG

    response = await http.post("/jobs/nap", params={"queue": "high"}, json={"seconds": 0})
    assert response.status_code == 202
    done = await wait_for_status(http, response.json()["status_url"], terminal, timeout_s=10)
    assert (done["status"], done["queue"]) == ("succeeded", "high")
    assert done["result"]["worker"] == stack.workers["high"]
    waited = seconds(done["started_at"], done["enqueued_at"])
    print(f"high job started {waited * 1000:.0f} ms after it was enqueued")
    assert waited < STARTS_WITHIN_S

    counts = await queue_counts(http)
    assert counts["default"]["pending"] >= 9_000 and counts["default"]["running"] == 1
    assert counts["high"]["succeeded"] >= 1
    listed = (await http.get("/jobs", params={"queue": "high", "limit": 500})).json()["items"]
    assert done["job_id"] in [item["job_id"] for item in listed]
    assert {item["queue"] for item in listed} == {"high"}


async def test_a_low_job_is_listed_under_low_and_runs_only_on_the_low_pool(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    response = await http.post("/jobs/nap", params={"queue": "low"}, json={"seconds": 0})
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    done = await wait_for_status(http, response.json()["status_url"], terminal)
    assert (done["status"], done["queue"], done["result"]["worker"]) == (
        "succeeded",
        "low",
        stack.workers["low"],
    )
    listed = (await http.get("/jobs", params={"queue": "low"})).json()["items"]
    assert [(item["job_id"], item["queue"]) for item in listed] == [(job_id, "low")]
    assert (await queue_counts(http))["low"]["succeeded"] == 1


async def test_an_unknown_queue_is_422_naming_the_known_ones(http: httpx.AsyncClient) -> None:
    response = await http.post("/jobs/noop", params={"queue": "urgent"}, json={})
    assert response.status_code == 422
    assert response.json() == {
        "error": "unknown_queue",
        "message": "no queue named 'urgent' is configured; the queues are high, default, low, lifecycle",
        "queue": "urgent",
        "queues": ["high", "default", "low", "lifecycle"],
        "task": "noop",
    }


def test_a_pool_for_a_queue_that_is_not_configured_does_not_start(stack: Stack) -> None:
    done = subprocess.run(
        [ARQ, "workers.UrgentWorkerSettings"], cwd=ROOT, env=stack.env(), capture_output=True, timeout=60
    )
    assert done.returncode == 1
    assert (
        "AttributeError: UrgentWorkerSettings serves no queue of JOBS_QUEUES (high, default, low, lifecycle); "
        "the pools are HighWorkerSettings (high), WorkerSettings (default), LowWorkerSettings (low), "
        "LifecycleWorkerSettings (lifecycle)"
    ) in done.stderr.decode()
