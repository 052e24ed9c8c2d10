"""Jobs run by a real arq Worker (burst mode) on fakeredis, with the worker options WorkerSettings uses."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._errors import TaskError
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskRegistry, task
from tests.shipped import registry as shipped
from workers.tasks.noop import NoopInput, noop
from workers.tasks.reports import ReportInput, generate_report

from .conftest import RunWorker
from .test_registry import In


@task(max_attempts=1)
async def explode(ctx: JobContext, data: In) -> None:
    """Always fail."""
    await ctx.progress(1, 2, "about to fail")
    raise TaskError(f"cannot handle {data.n}")


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([*shipped, explode])


async def test_noop_returns_its_input(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=[1, {"b": None}]))
    worker = await run_worker()
    record_ttl = await arq_redis.pttl(f"unit:job:{job.job_id}")  # set at the end: kept as long as the result
    result_ttl = await arq_redis.pttl(f"arq:result:{job.job_id}")
    assert 86_390_000 < record_ttl <= 86_400_000 and abs(record_ttl - result_ttl) < 1_000
    assert (worker.jobs_complete, worker.jobs_failed) == (1, 0)
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED
    assert status.result == {"value": [1, {"b": None}]}
    assert status.attempt == 1
    assert status.started_at is not None and status.finished_at is not None
    assert status.started_at <= status.finished_at


async def test_report_records_progress_and_stores_report(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(generate_report, ReportInput(rows=200, seed=3, step_delay_s=0))
    await run_worker()
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED
    assert status.progress is not None
    assert (status.progress.step, status.progress.total, status.progress.percent) == (4, 4, 100.0)
    assert status.progress.message == "report stored"
    assert isinstance(status.result, dict)
    assert status.result["storage_key"] == f"unit:report:{job.job_id}"
    assert status.result["rows"] == 200
    assert await arq_redis.exists(f"unit:report:{job.job_id}") == 1


async def test_failing_task_fails_with_type_and_message(
    job_client: JobClient, registry: TaskRegistry, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(explode, In(n=7))
    worker = await run_worker()
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.is_terminal
    assert status.error is not None
    assert (status.error.type, status.error.message) == ("TaskError", "cannot handle 7")
    assert status.progress is not None and status.progress.message == "about to fail"
    assert status.result is None


async def test_payload_that_no_longer_validates_fails_the_job(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(generate_report, ReportInput(rows=1))
    raw = await arq_redis.get(Keys.arq_job(job.job_id))
    assert raw is not None
    await arq_redis.set(Keys.arq_job(job.job_id), raw.replace(b'"rows":1', b'"rows":-5'))
    await run_worker()
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED
    assert status.error is not None and status.error.type == "TaskInputError"
    assert (
        status.error.message
        == "invalid input for task 'generate_report': rows: Input should be greater than or equal to 1"
    )


async def test_pickled_job_is_refused_not_run(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    await arq_redis.set(Keys.arq_job(job.job_id), b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00}\x94.")
    worker = await run_worker()
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED
    assert status.error is not None
    assert (status.error.type, status.error.message) == ("DeserializationError", "unable to deserialize job")
