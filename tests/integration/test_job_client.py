"""`JobClient.connect()`: enqueue and follow a job from code that is neither the app nor a worker (a
script, another service), against the real Redis and a real `arq workers.WorkerSettings` worker."""

from __future__ import annotations

import asyncio

from arq_jobs import JobClient, JobState, Settings
from tests.integration.conftest import Service
from workers.tasks.noop import NoopInput, noop


async def test_a_client_of_its_own_enqueues_a_job_the_worker_runs(
    redis_url: str, key_prefix: str, worker: Service
) -> None:
    settings = Settings(_env_file=None, redis_url=redis_url, key_prefix=key_prefix)  # type: ignore[call-arg]
    async with JobClient.connect(settings, task_packages=["workers.tasks"]) as jobs:
        assert sorted(task.name for task in jobs.registry) == ["generate_report", "noop", "send_webhook"]
        job = await jobs.enqueue(noop, NoopInput(value="from a script"))
        for _ in range(200):
            status = await jobs.status(job.job_id)
            if status.is_terminal:
                break
            await asyncio.sleep(0.05)
    assert (status.status, status.result, status.attempt) == (
        JobState.SUCCEEDED,
        {"value": "from a script"},
        1,
    )
