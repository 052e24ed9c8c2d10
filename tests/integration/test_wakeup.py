"""A worker that polls only every 5 s still starts a job enqueued to run now at once: the enqueue
publishes on the queue's wake channel, and a finished job wakes the worker for jobs it left behind."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from arq.connections import ArqRedis
from redis.asyncio import ConnectionPool

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.registry import TaskRegistry
from tests.integration.tasks.probes import HoldInput, nap
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop

from .conftest import QUEUES, Service, start_worker

QUEUE = "wakeup"  # served only by the workers these tests start
POLL_DELAY_S = "5"
WOKEN_WITHIN_S = 2.0  # well under the poll delay: the wake-up worked (not a speed claim)


@pytest.fixture
async def jobs(redis_url: str, key_prefix: str) -> AsyncIterator[JobClient]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=redis_url, key_prefix=key_prefix, queues=(QUEUE,), queue_name=QUEUE
    )
    pool = ConnectionPool.from_url(redis_url)
    arq_redis = ArqRedis(pool, job_serializer=dumps, job_deserializer=loads)
    yield JobClient(arq_redis, settings, TaskRegistry([*shipped, nap]))
    await arq_redis.aclose()
    await pool.disconnect()


def sleeping_worker(
    redis_url: str, key_prefix: str, log_dir: Path, redis_client: redis.Redis, **env: str
) -> Service:
    """A worker on QUEUE polling every 5 s, once it listens on the wake channel and has made its
    first poll (it sleeps until the next one)."""
    service, _ = start_worker(
        redis_url,
        key_prefix,
        log_dir,
        "wakeup",
        JOBS_QUEUES=f"{QUEUES},{QUEUE}",
        JOBS_QUEUE_NAME=QUEUE,
        JOBS_POLL_DELAY_S=POLL_DELAY_S,
        **env,
    )
    channel = Keys.wake_channel(Keys(key_prefix).queue(QUEUE))

    def listening() -> bool:
        [(_, subscribers)] = redis_client.pubsub_numsub(channel)  # type: ignore[misc]
        return int(subscribers) == 1

    service.wait_until(listening)
    time.sleep(0.5)
    return service


async def wait_done(jobs: JobClient, job_id: str, timeout_s: float) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while True:
        status = await jobs.status(job_id)
        if status.is_terminal:
            return status
        assert time.monotonic() < deadline, f"not done in {timeout_s} s: {status}"
        await asyncio.sleep(0.05)


def seconds(later: datetime | None, earlier: datetime | None) -> float:
    assert later is not None and earlier is not None
    return (later - earlier).total_seconds()


def started(status: JobStatus) -> datetime:
    assert status.started_at is not None
    return status.started_at


async def test_a_job_enqueued_while_the_worker_sleeps_starts_at_once(
    jobs: JobClient, redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    worker = sleeping_worker(redis_url, key_prefix, tmp_path, redis_client)
    try:
        for n in range(2):  # and again once the worker went back to sleep
            job = await jobs.enqueue(noop, NoopInput(value=n))
            status = await wait_done(jobs, job.job_id, timeout_s=8)
            assert status.status is JobState.SUCCEEDED and status.result == {"value": n}
            waited = seconds(status.started_at, status.enqueued_at)
            assert waited < WOKEN_WITHIN_S, f"job {n} started {waited:.2f} s after it was enqueued"
            await asyncio.sleep(1)
    finally:
        worker.stop()


async def test_a_delayed_job_still_runs(
    jobs: JobClient, redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    worker = sleeping_worker(redis_url, key_prefix, tmp_path, redis_client)
    try:
        job = await jobs.enqueue(noop, NoopInput(value="later"), delay=1)
        assert job.status is JobState.SCHEDULED
        status = await wait_done(jobs, job.job_id, timeout_s=8)  # at a poll: up to 5 s after it is due
        assert status.status is JobState.SUCCEEDED and status.result == {"value": "later"}
        assert seconds(status.started_at, status.enqueued_at) >= 1.0
    finally:
        worker.stop()


async def test_a_finished_job_wakes_the_worker_for_the_jobs_it_left_behind(
    jobs: JobClient, redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # both wait before the worker starts: its first poll claims one (one slot) and leaves the other
    first = await jobs.enqueue(nap, HoldInput(seconds=0.5))
    second = await jobs.enqueue(nap, HoldInput(seconds=0.5))
    worker = sleeping_worker(redis_url, key_prefix, tmp_path, redis_client, JOBS_WORKER_CONCURRENCY="1")
    try:
        done = [await wait_done(jobs, job.job_id, timeout_s=10) for job in (first, second)]
        assert [status.status for status in done] == [JobState.SUCCEEDED] * 2
        earlier, later = sorted(done, key=started)
        waited = seconds(later.started_at, earlier.finished_at)
        assert 0 <= waited < WOKEN_WITHIN_S, f"the second job started {waited:.2f} s after the slot freed"
    finally:
        worker.stop()


async def test_a_job_enqueued_while_every_slot_is_busy_starts_when_one_frees(
    jobs: JobClient, redis_url: str, key_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    worker = sleeping_worker(redis_url, key_prefix, tmp_path, redis_client, JOBS_WORKER_CONCURRENCY="1")
    try:
        first = await jobs.enqueue(nap, HoldInput(seconds=1))
        deadline = time.monotonic() + 5
        while (await jobs.status(first.job_id)).status is not JobState.RUNNING:
            assert time.monotonic() < deadline, "the first job did not start"
            await asyncio.sleep(0.02)
        second = await jobs.enqueue(nap, HoldInput(seconds=0))  # no free slot now
        done = [await wait_done(jobs, job.job_id, timeout_s=10) for job in (first, second)]
        assert [status.status for status in done] == [JobState.SUCCEEDED] * 2
        waited = seconds(done[1].started_at, done[0].finished_at)
        assert 0 <= waited < WOKEN_WITHIN_S, f"the second job started {waited:.2f} s after the slot freed"
    finally:
        worker.stop()
