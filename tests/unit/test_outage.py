"""The worker's view of Redis (arq_jobs._worker.outage): backoff, the two log lines of an outage,
holding a write through it, and the gauges that show it."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from prometheus_client import generate_latest
from redis.exceptions import BusyLoadingError, ReadOnlyError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from arq_jobs._client import JobClient
from arq_jobs._jobs.states import JobState
from arq_jobs._worker.metrics import WorkerMetrics
from arq_jobs._worker.outage import OutageGaveUp, RedisHealth
from arq_jobs._worker.runtime import Runtime
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_from_a_tenth_of_a_second_to_five_with_jitter() -> None:
    clock = Clock()
    health = RedisHealth(clock=clock)
    health.failed(RedisConnectionError("refused"))
    waits = []
    for _ in range(12):
        wait = health.delay_s()
        waits.append(wait)
        clock.now += wait
    assert 0.05 <= waits[0] <= 0.1
    for before, after in zip(waits, waits[1:], strict=False):
        assert after <= 5.0
        assert after >= min(2.5, before * 0.5)  # grows with the outage, never shrinks below half of it
    assert all(2.5 <= wait <= 5.0 for wait in waits[-3:])  # capped at 5 s (less the jitter)
    assert len(set(waits)) > 1


def test_an_outage_logs_one_warning_and_one_line_at_its_end(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    health = RedisHealth(clock=clock)
    caplog.set_level(logging.INFO, logger="arq_jobs._worker.outage")
    health.recovered()  # nothing to report while up
    for _ in range(50):
        health.failed(RedisConnectionError("Connection refused"))
        clock.now += 0.25
    assert (health.up, health.outage_s) == (False, 12.5)
    for _ in range(3):
        health.recovered()
    assert (health.up, health.since, health.outage_s) == (True, None, 0.0)
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unavailable: ConnectionError: Connection refused; taking no new jobs, retrying until "
        "it answers",
        "Redis available again after 12.5 s of outage (ConnectionError: Connection refused)",
    ]


def test_an_outage_of_refused_writes_ends_only_with_a_write() -> None:
    health = RedisHealth()
    health.failed(ReadOnlyError("You can't write against a read only replica."))
    health.recovered(wrote=False)  # a claim that found nothing due: a read answered
    assert not health.up
    health.recovered()  # a write went through
    assert health.up
    health.failed(RedisConnectionError("Connection refused"))
    health.recovered(wrote=False)  # any answer ends an outage of an unreachable Redis
    assert health.up


async def test_backoff_ends_as_soon_as_another_loop_finds_redis_back() -> None:
    health = RedisHealth(first_s=5, max_s=5)
    health.failed(RedisConnectionError("refused"))
    waiting = asyncio.create_task(health.backoff())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    started = time.monotonic()
    health.recovered()
    await asyncio.wait_for(waiting, 1)
    assert time.monotonic() - started < 0.5
    await asyncio.wait_for(health.backoff(), 0.1)  # up: no wait


async def test_hold_retries_a_write_until_redis_answers() -> None:
    health = RedisHealth(hold_s=5, first_s=0.01, max_s=0.02)
    errors: list[Exception] = [
        RedisConnectionError("refused"),
        BusyLoadingError("Redis is loading the dataset in memory"),
        ReadOnlyError("You can't write against a read only replica."),
    ]
    tries = 0

    async def write() -> str:
        nonlocal tries
        tries += 1
        if errors:
            raise errors.pop(0)
        return "written"

    assert await health.hold(write) == "written"
    assert tries == 4 and health.up


async def test_hold_gives_a_write_up_after_hold_s() -> None:
    health = RedisHealth(hold_s=0.3, first_s=0.01, max_s=0.05)
    tries = 0

    async def write() -> None:
        nonlocal tries
        tries += 1
        raise RedisConnectionError("refused")

    started = time.monotonic()
    with pytest.raises(OutageGaveUp) as gave_up:
        await health.hold(write)
    assert isinstance(gave_up.value.__cause__, RedisConnectionError)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert tries > 3 and not health.up


async def test_hold_does_not_retry_an_error_that_is_not_an_outage() -> None:
    health = RedisHealth(hold_s=5)
    tries = 0

    async def write() -> None:
        nonlocal tries
        tries += 1
        raise ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(ResponseError):
        await health.hold(write)
    assert tries == 1 and health.up


def test_the_gauges_show_the_outage() -> None:
    clock = Clock()
    health = RedisHealth(clock=clock)
    metrics = WorkerMetrics()
    metrics.watch(health)

    def scrape() -> list[str]:
        text = generate_latest(metrics.registry).decode()
        return [line for line in text.splitlines() if line.startswith(("redis_up", "redis_outage_seconds"))]

    assert scrape() == ["redis_up 1.0", "redis_outage_seconds 0.0"]
    health.failed(RedisConnectionError("refused"))
    clock.now += 7.5
    assert scrape() == ["redis_up 0.0", "redis_outage_seconds 7.5"]
    health.recovered()
    assert scrape() == ["redis_up 1.0", "redis_outage_seconds 0.0"]


async def test_a_start_given_up_in_an_outage_leaves_the_job_queued_to_run_again(
    job_client: JobClient, run_worker: RunWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the given-up write's error failed the attempt, and ARQ's finish (held in turn) could
    delete the job once Redis was back, leaving its record `pending` for good."""
    original = Runtime.begin
    calls = 0

    async def begin_once_given_up(self: Runtime, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OutageGaveUp("Redis did not answer for 60 s (ConnectionError('refused'))")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(Runtime, "begin", begin_once_given_up)
    job = await job_client.enqueue(noop, NoopInput(value="again"))
    await run_worker()
    status = await job_client.status(job.job_id)
    assert (calls, status.status, status.result, status.attempt) == (
        2,
        JobState.SUCCEEDED,
        {"value": "again"},
        2,
    )
    assert status.dead_lettered is False
