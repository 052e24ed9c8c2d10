"""`JobClient.details`: a job's input and its error's traceback, read from ARQ's job or result key."""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._jobs.details import parse_details
from arq_jobs._keys import Keys
from arq_jobs._tasks.registry import TaskRegistry
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker
from .test_dashboard_pages import REGISTRY, refuses
from .test_registry import In


@pytest.fixture
def registry() -> TaskRegistry:
    return REGISTRY


async def test_input_of_a_waiting_job_and_of_an_ended_one(
    job_client: JobClient, run_worker: RunWorker
) -> None:
    done = await job_client.enqueue(noop, NoopInput(value={"a": [1, 2]}))
    await run_worker()
    waiting = await job_client.enqueue(noop, NoopInput(value="later"), delay=600)
    assert (await job_client.details(waiting.job_id)).model_dump() == {
        "input": {"value": "later"},
        "input_kept": True,
        "traceback": None,
    }
    ended = await job_client.details(done.job_id)
    assert (ended.input, ended.input_kept, ended.traceback) == ({"value": {"a": [1, 2]}}, True, None)


async def test_traceback_of_a_failed_job(job_client: JobClient, run_worker: RunWorker) -> None:
    failed = await job_client.enqueue(refuses, In(n=3))
    await run_worker()
    details = await job_client.details(failed.job_id)
    assert details.input == {"n": 3}
    assert details.traceback is not None
    assert details.traceback.startswith("Traceback (most recent call last)")
    assert "PermanentError: refused 3" in details.traceback


async def test_a_job_cancelled_while_waiting_keeps_no_input(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1), delay=600)
    await job_client.cancel(job.job_id)
    assert await arq_redis.exists(Keys.arq_job(job.job_id)) == 0
    details = await job_client.details(job.job_id)
    assert (details.input, details.input_kept, details.traceback) == (None, False, None)


def test_unreadable_values_are_not_guessed_at() -> None:
    assert parse_details(b"not json", b"[1, 2]").input_kept is False
    assert parse_details(b'{"a": []}', None).input_kept is False
    result = b'{"a": [{"n": 1}], "s": false, "r": "plain text error"}'
    assert parse_details(None, result).model_dump() == {
        "input": {"n": 1},
        "input_kept": True,
        "traceback": None,
    }
