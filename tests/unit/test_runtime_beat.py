"""Runtime.beat (lease renewal, cancel requests) and the soft time limit on JobContext, driven directly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from arq.connections import ArqRedis
from redis.exceptions import ResponseError

from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import SoftTimeLimitExceeded
from arq_jobs._keys import Keys
from arq_jobs._limits.spec import TaskLimits
from arq_jobs._limits.worker import WorkerLimits
from arq_jobs._tasks.context import JobContext, Resources
from arq_jobs._worker.runtime import Runtime

from .conftest import make_settings


@pytest.fixture
async def resources(arq_redis: ArqRedis, settings: Settings) -> AsyncIterator[Resources]:
    async with httpx.AsyncClient() as http:
        yield Resources(settings=settings, redis=arq_redis, http=http, worker_id="test:1:abcdef")


async def attempt_task(runtime: Runtime, job_id: str) -> asyncio.Task[None]:
    """An asyncio task standing for a running attempt of `job_id`, tracked by `runtime`."""
    tracked = asyncio.Event()

    async def attempt() -> None:
        runtime.track(job_id)
        tracked.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(attempt())
    await tracked.wait()
    return task


async def test_beat_renews_the_lease_of_each_running_attempt(
    arq_redis: ArqRedis, resources: Resources
) -> None:
    runtime = Runtime(resources)
    assert runtime.lease_ms == 10_000
    one, two = await attempt_task(runtime, "job-1"), await attempt_task(runtime, "job-2")
    await arq_redis.set(Keys.arq_in_progress("job-1"), b"1", px=600_000)  # ARQ's long claim
    await arq_redis.set(Keys.arq_in_progress("job-2"), b"1", px=1_000)  # about to run out
    await runtime.beat()
    for job_id in ("job-1", "job-2"):
        assert 9_000 < await arq_redis.pttl(Keys.arq_in_progress(job_id)) <= 10_000
    assert not one.done() and not two.done()  # no cancel requested
    assert [a.cancel_requested for a in runtime.running.values()] == [False, False]
    for task in (one, two):
        task.cancel()
    await asyncio.gather(one, two, return_exceptions=True)


async def test_beat_uses_the_configured_lease(arq_redis: ArqRedis) -> None:
    async with httpx.AsyncClient() as http:
        resources = Resources(make_settings(lease_s=2.5), arq_redis, http, "test:1:abcdef")
        runtime = Runtime(resources)
        task = await attempt_task(runtime, "job-1")
        await arq_redis.set(Keys.arq_in_progress("job-1"), b"1", px=600_000)
        await runtime.beat()
        assert 2_000 < await arq_redis.pttl(Keys.arq_in_progress("job-1")) <= 2_500
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_beat_cancels_the_attempt_of_a_job_asked_to_cancel_once(
    arq_redis: ArqRedis, resources: Resources
) -> None:
    runtime = Runtime(resources)
    flagged, other = await attempt_task(runtime, "job-1"), await attempt_task(runtime, "job-2")
    await arq_redis.hset("unit:job:job-1", "cancel_requested", str(now_ms()))
    await runtime.beat()
    with pytest.raises(asyncio.CancelledError):
        await flagged
    assert flagged.cancelled()
    assert runtime.running["job-1"].cancel_requested is True
    assert runtime.running["job-2"].cancel_requested is False and not other.done()
    # the next beat does not cancel it again (the runner may be cleaning up)
    await runtime.beat()
    assert runtime.running["job-1"].cancel_requested is True
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)


async def test_untracked_attempts_are_left_alone(arq_redis: ArqRedis, resources: Resources) -> None:
    runtime = Runtime(resources)
    task = await attempt_task(runtime, "job-1")
    runtime.untrack("job-1")
    runtime.untrack("job-1")  # twice is fine
    await arq_redis.hset("unit:job:job-1", "cancel_requested", str(now_ms()))
    await arq_redis.set(Keys.arq_in_progress("job-1"), b"1", px=600_000)
    await runtime.beat()  # nothing running: only the heartbeat, no lease is touched
    assert not task.done()
    assert await arq_redis.pttl(Keys.arq_in_progress("job-1")) > 500_000
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_background_beat_runs_every_interval(arq_redis: ArqRedis, resources: Resources) -> None:
    runtime = Runtime(resources, interval_s=0.02)
    task = await attempt_task(runtime, "job-1")
    await runtime.start()
    try:
        await arq_redis.hset("unit:job:job-1", "cancel_requested", str(now_ms()))
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 1.0)
        assert task.cancelled()
    finally:
        await runtime.stop()
    assert runtime._loop_task is None
    await runtime.stop()  # stopping twice is fine


def test_check_soft_limit_raises_only_after_the_event_is_set(resources: Resources) -> None:
    ctx = JobContext("job-1", "task", 1, resources, soft_timeout_s=0.25)
    assert ctx.soft_limit_reached is False
    ctx.check_soft_limit()  # nothing yet
    ctx.soft_limit.set()
    assert ctx.soft_limit_reached is True
    with pytest.raises(SoftTimeLimitExceeded) as raised:
        ctx.check_soft_limit()
    assert str(raised.value) == "the attempt passed its soft time limit of 0.25 s"
    assert raised.value.limit_s == 0.25


def test_each_context_has_its_own_soft_limit(resources: Resources) -> None:
    first = JobContext("job-1", "t", 1, resources, soft_timeout_s=1.0)
    second = JobContext("job-2", "t", 1, resources, soft_timeout_s=1.0)
    first.soft_limit.set()
    assert first.soft_limit_reached and not second.soft_limit_reached
    second.check_soft_limit()


async def test_soft_limit_without_a_limit_names_zero(resources: Resources) -> None:
    ctx = JobContext("job-1", "t", 1, resources)
    ctx.soft_limit.set()
    with pytest.raises(SoftTimeLimitExceeded, match=r"^the attempt passed its soft time limit of 0 s$"):
        ctx.check_soft_limit()


async def test_beat_keeps_the_concurrency_places_of_running_attempts(
    arq_redis: ArqRedis, resources: Resources
) -> None:
    runtime = Runtime(
        resources, limits=WorkerLimits(resources.keys, {"capped": TaskLimits(max_concurrency=2)})
    )
    places = resources.keys.limit("capped", "running")
    attempt = await attempt_task(runtime, "job-1")
    runtime.limits.hold("job-1", "capped")
    other = await attempt_task(runtime, "job-2")  # its place already ran out and was taken back
    runtime.limits.hold("job-2", "capped")
    await arq_redis.zadd(places, {"job-1": now_ms() + 1_000, "gone": now_ms() + 1_000})
    before = now_ms()
    await runtime.beat()
    score = await arq_redis.zscore(places, "job-1")
    assert score is not None and before + 10_000 <= score <= now_ms() + 10_000
    assert await arq_redis.zscore(places, "gone") is not None  # not this worker's: left alone
    assert await arq_redis.zscore(places, "job-2") is None  # a renewal never creates a place
    for task in (attempt, other):
        task.cancel()
    await asyncio.gather(attempt, other, return_exceptions=True)


async def test_the_beat_loop_samples_the_queue_depth_once_per_tick(
    arq_redis: ArqRedis, resources: Resources
) -> None:
    await arq_redis.zadd(Keys("unit").index("phase", "queued:queue:default"), {"a": now_ms() + 60_000})
    runtime = Runtime(resources, interval_s=0.02)
    await runtime.start()
    try:
        for _ in range(100):
            if runtime.depth.last_tick >= 0:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # more beats in the same tick of JOBS_STATS_SAMPLE_S (5 s)
    finally:
        await runtime.stop()
    minute = now_ms() // 60_000 * 60
    sample = await arq_redis.hgetall(Keys("unit").stats("m", minute, "depth:default"))  # type: ignore[misc]
    if not sample:  # the minute turned between the sample and this read
        sample = await arq_redis.hgetall(Keys("unit").stats("m", minute - 60, "depth:default"))  # type: ignore[misc]
    assert sample == {
        b"samples": b"1",
        b"pending": b"0",
        b"scheduled": b"1",
        b"running": b"0",
        b"retrying": b"0",
    }


async def test_a_failed_depth_sample_skips_its_tick_and_is_not_an_outage(
    resources: Resources, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = Runtime(resources, interval_s=0.02)

    async def refused(now: int) -> bool:
        raise ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(runtime.depth, "sample", refused)
    await runtime.sample_depth(now_ms())
    assert runtime.health.up
    assert "queue depth not sampled" in caplog.text
