"""Failed attempts under a real arq Worker on fakeredis: retries and their backoff, time limits,
dead letters, cancellation, worker shutdown, and the failures ARQ handles before running a task."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.jobs import serialize_job
from arq.worker import Worker

from arq_jobs._client import JobClient
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._deadletters import DeadLetter, DeadLetterStore
from arq_jobs._errors import DeadLetterNotFoundError, PermanentError, TransientError
from arq_jobs._jobs.records import JobError
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.status import JobStatus
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import Task, TaskRegistry, task
from arq_jobs._tasks.retry import RetryPolicy
from arq_jobs._worker.context import get_runtime
from tests.shipped import registry as shipped

from .conftest import MakeWorker, RunWorker, make_settings
from .test_registry import In

QUEUE = "unit:queue:default"

CALLS: list[tuple[str, int]] = []  # (task, attempt) of every call of a test task
EVENTS: list[str] = []  # what `sleeper` and `overruns` went through
SOFT_SEEN: list[tuple[int, bool, float]] = []  # (attempt, ctx.soft_limit_reached, seconds in)
HOLD: set[str] = set()  # job ids `sleeper` blocks on


@task(retry=RetryPolicy(max_attempts=3, base_s=0))
async def flaky_twice(ctx: JobContext, data: In) -> int:
    """Fail the first two attempts with a transient error."""
    CALLS.append((ctx.task, ctx.attempt))
    if ctx.attempt < 3:
        raise TransientError(f"blip {ctx.attempt} on {data.n}")
    return data.n * 10


@task(retry=RetryPolicy(max_attempts=2, base_s=0))
async def always_flaky(ctx: JobContext, data: In) -> None:
    """Always fail with a transient error."""
    CALLS.append((ctx.task, ctx.attempt))
    raise TransientError(f"still down for {data.n}")


@task(retry=RetryPolicy(max_attempts=3, base_s=0))
async def rejects(ctx: JobContext, data: In) -> None:
    """Fail with a permanent error."""
    CALLS.append((ctx.task, ctx.attempt))
    raise PermanentError(f"{data.n} can never work")


@task(retry=RetryPolicy(max_attempts=3, base_s=0, retry_on=(ConnectionError,)))
async def picky(ctx: JobContext, data: In) -> None:
    """Retries connection errors only: n < 0 raises one, else a ValueError."""
    CALLS.append((ctx.task, ctx.attempt))
    if data.n < 0:
        raise ConnectionError("connection reset")
    raise ValueError(f"bad value {data.n}")


@task(retry=RetryPolicy(max_attempts=2, base_s=30, factor=1, cap_s=30))
async def backs_off(ctx: JobContext, data: In) -> None:
    """Fail transiently; n > 0 asks for a Retry-After of n seconds."""
    CALLS.append((ctx.task, ctx.attempt))
    raise TransientError("throttled", retry_after_s=data.n or None)


@task(timeout_s=0.3, soft_timeout_s=0.1, retry=RetryPolicy(max_attempts=2, base_s=0))
async def overruns(ctx: JobContext, data: In) -> None:
    """Note the soft limit, then sleep through the hard one."""
    CALLS.append((ctx.task, ctx.attempt))
    started = time.monotonic()
    await ctx.soft_limit.wait()
    SOFT_SEEN.append((ctx.attempt, ctx.soft_limit_reached, time.monotonic() - started))
    await ctx.progress(1, 2, "soft limit reached")
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        EVENTS.append(f"overruns {ctx.attempt} stopped")
        raise


@task(timeout_s=0.5, soft_timeout_s=0.1, max_attempts=1)
async def heeds_soft_limit(ctx: JobContext, data: In) -> dict[str, Any]:
    """Work in small steps until the soft limit, then return what was done."""
    started = time.monotonic()
    steps = 0
    while not ctx.soft_limit_reached:
        steps += 1
        await asyncio.sleep(0.01)
    return {"steps": steps, "elapsed_s": time.monotonic() - started}


@task(timeout_s=0.5, soft_timeout_s=0.1, max_attempts=1)
async def checks_soft_limit(ctx: JobContext, data: In) -> None:
    """Work in small steps, calling check_soft_limit() before each."""
    while True:
        ctx.check_soft_limit()
        await asyncio.sleep(0.01)


@task(max_attempts=1)
async def sleeper(ctx: JobContext, data: In) -> str:
    """Sleep 10 s while the job's id is in HOLD, else return at once."""
    EVENTS.append(f"started {ctx.attempt}")
    if ctx.job_id in HOLD:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            EVENTS.append("sleep interrupted")
            raise
    EVENTS.append("finished")
    return "done"


@task(max_attempts=1)
async def stubborn(ctx: JobContext, data: In) -> str:
    """Sleep 10 s, swallowing a cancellation."""
    EVENTS.append("stubborn started")
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        EVENTS.append("cancel swallowed")
    return "finished anyway"


@task(max_attempts=1)
async def reads_lease(ctx: JobContext, data: In) -> int:
    """Return the TTL (ms) of ARQ's in-progress key of this job, as the task sees it."""
    ttl: int = await ctx.redis.pttl(Keys.arq_in_progress(ctx.job_id))
    return ttl


@task(retry=RetryPolicy(max_attempts=2, base_s=0))
async def cancels_itself(ctx: JobContext, data: In) -> None:
    """Await a helper future that gets cancelled: a CancelledError the worker did not cause."""
    CALLS.append((ctx.task, ctx.attempt))
    inner = asyncio.ensure_future(asyncio.sleep(5))
    asyncio.get_running_loop().call_later(0.01, inner.cancel)
    await inner


@task(retry=RetryPolicy(max_attempts=3, base_s=0))
async def cancelled_as_it_fails(ctx: JobContext, data: In) -> None:
    """Get cancelled (the flag only, as DELETE sets it) just as the attempt fails."""
    CALLS.append((ctx.task, ctx.attempt))
    await ctx.redis.hset(ctx.keys.record(ctx.job_id), "cancel_requested", str(now_ms()))  # type: ignore[misc]
    raise TransientError("down")


@task(timeout_s=20, max_attempts=1)
async def reads_job_ttl(ctx: JobContext, data: In) -> int:
    """Return the TTL (ms) of ARQ's job key of this job, as the task sees it."""
    ttl: int = await ctx.redis.pttl(Keys.arq_job(ctx.job_id))
    return ttl


TEST_TASKS: list[Task[Any, Any]] = [
    reads_job_ttl,
    cancels_itself,
    cancelled_as_it_fails,
    flaky_twice,
    always_flaky,
    rejects,
    picky,
    backs_off,
    overruns,
    heeds_soft_limit,
    checks_soft_limit,
    sleeper,
    stubborn,
    reads_lease,
]


@pytest.fixture
def registry() -> TaskRegistry:
    return TaskRegistry([*shipped, *TEST_TASKS])


@pytest.fixture(autouse=True)
def clean_logs() -> None:
    for log in (CALLS, EVENTS, SOFT_SEEN):
        log.clear()
    HOLD.clear()


async def stopped(worker: Worker) -> None:
    """Wait for a worker whose main task was cancelled (by handle_sig) and its jobs to end, then run
    its on_shutdown, as `Worker.close` does (without closing the shared pool)."""
    assert worker.main_task is not None
    with contextlib.suppress(asyncio.CancelledError):
        await worker.main_task
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    await worker.on_shutdown(worker.ctx)  # type: ignore[misc]


@contextlib.asynccontextmanager
async def background(worker: Worker) -> AsyncIterator[Worker]:
    """Run a non-burst worker while the block runs; stop it as a signal would at the end."""
    worker.main_task = asyncio.create_task(worker.main())
    try:
        yield worker
    finally:
        if not worker.main_task.done():
            worker.handle_sig(signal.SIGUSR1)
        await stopped(worker)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.01)


async def status_when(
    client: JobClient, job_id: str, predicate: Callable[[JobStatus], bool], timeout_s: float = 3.0
) -> JobStatus:
    seen: list[JobStatus] = []

    async def check() -> bool:
        seen.append(await client.status(job_id))
        return predicate(seen[-1])

    try:
        await eventually(check, "job status", timeout_s)
    except AssertionError:
        raise AssertionError(f"job status not as expected within {timeout_s} s: last {seen[-1]!r}") from None
    return seen[-1]


async def events_include(event: str) -> bool:
    return event in EVENTS


def dead_letters(arq_redis: ArqRedis, settings: Settings) -> DeadLetterStore:
    return DeadLetterStore(arq_redis, Keys("unit"), settings.dead_letter_ttl_s)


async def no_dead_letter(arq_redis: ArqRedis, settings: Settings, job_id: str) -> bool:
    with contextlib.suppress(DeadLetterNotFoundError):
        await dead_letters(arq_redis, settings).get(job_id)
        return False
    return True


def this_worker(letter: DeadLetter) -> bool:
    """Whether `letter` names a worker of this process (host:pid:random)."""
    host, pid, suffix = (letter.worker or "").split(":")
    return (host, pid) == (socket.gethostname(), str(os.getpid())) and len(suffix) == 6


# -- retries ---------------------------------------------------------------------------------


async def test_transient_failures_are_retried_until_success(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(flaky_twice, In(n=4))
    worker = await run_worker()
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (1, 2, 0)
    assert CALLS == [("flaky_twice", 1), ("flaky_twice", 2), ("flaky_twice", 3)]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED
    assert (status.attempt, status.max_attempts) == (3, 3)
    assert status.result == 40
    assert status.error is None and status.next_attempt_at is None
    assert status.dead_lettered is False
    record = await arq_redis.hgetall(f"unit:job:{job.job_id}")
    assert b"state" not in record and b"next_attempt_at" not in record  # the retry mark was cleared
    assert record[b"attempt"] == b"3"
    assert await no_dead_letter(arq_redis, settings, job.job_id)
    assert await arq_redis.zcard("unit:dead-letters") == 0


async def test_transient_failures_past_max_attempts_are_dead_lettered(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=5))
    before = now_ms()
    worker = await run_worker()
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (0, 1, 1)
    assert CALLS == [("always_flaky", 1), ("always_flaky", 2)]

    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.is_terminal
    assert (status.attempt, status.max_attempts) == (2, 2)
    assert status.error == JobError(type="TransientError", message="still down for 5")
    assert status.dead_lettered is True

    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert letter.reason == "attempts_exhausted"
    assert (letter.task, letter.queue, letter.attempts, letter.max_attempts) == (
        "always_flaky",
        "default",
        2,
        2,
    )
    assert letter.input == {"n": 5}
    assert (letter.error.type, letter.error.message) == ("TransientError", "still down for 5")
    assert letter.error.traceback is not None
    assert "Traceback (most recent call last)" in letter.error.traceback
    assert 'raise TransientError(f"still down for {data.n}")' in letter.error.traceback
    assert letter.error.traceback.rstrip().endswith("arq_jobs._errors.TransientError: still down for 5")
    assert this_worker(letter)
    assert letter.enqueued_at == status.enqueued_at
    # the record's start (the wrapper's clock) vs ARQ's (status): the same moment, read twice
    assert letter.started_at is not None and status.started_at is not None
    assert abs((letter.started_at - status.started_at).total_seconds()) < 0.05
    assert before <= letter.failed_at.timestamp() * 1000 <= now_ms()
    assert letter.retry_of is None
    # indexed, newest first, overall and per task
    page = await job_client.dead_letters.page(limit=10, cursor=None, task="always_flaky", now_ms=now_ms())
    assert [item.job_id for item in page.items] == [job.job_id]
    assert await arq_redis.zscore("unit:dead-letters", job.job_id) is not None


async def test_permanent_error_fails_at_once(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(rejects, In(n=7))
    worker = await run_worker()
    assert (worker.jobs_retried, worker.jobs_failed) == (0, 1)
    assert CALLS == [("rejects", 1)]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED
    assert (status.attempt, status.max_attempts) == (1, 3)
    assert status.error == JobError(type="PermanentError", message="7 can never work")
    assert status.dead_lettered is True
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts, letter.max_attempts) == ("permanent_error", 1, 3)
    assert (letter.error.type, letter.error.message) == ("PermanentError", "7 can never work")
    assert letter.input == {"n": 7}


async def test_error_outside_retry_on_fails_at_once(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(picky, In(n=2))
    await run_worker()
    assert CALLS == [("picky", 1)]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.attempt == 1
    assert status.error == JobError(type="ValueError", message="bad value 2")
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts) == ("permanent_error", 1)
    assert (letter.error.type, letter.error.message) == ("ValueError", "bad value 2")


async def test_error_in_retry_on_is_retried_until_attempts_run_out(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(picky, In(n=-1))
    await run_worker()
    assert CALLS == [("picky", 1), ("picky", 2), ("picky", 3)]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.attempt == 3
    assert status.error == JobError(type="ConnectionError", message="connection reset")
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts) == ("attempts_exhausted", 3)


async def test_waiting_for_the_next_attempt_is_retrying(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(backs_off, In(n=0))
    before = now_ms()
    worker = await run_worker(max_burst_jobs=1)  # one attempt, then stop
    after = now_ms()
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (0, 1, 0)
    assert CALLS == [("backs_off", 1)]

    status = await job_client.status(job.job_id)
    assert status.status is JobState.RETRYING and not status.is_terminal
    assert (status.attempt, status.max_attempts) == (1, 2)
    assert status.error == JobError(type="TransientError", message="throttled")
    assert status.dead_lettered is False and status.finished_at is None
    assert status.next_attempt_at is not None
    next_ms = int(await arq_redis.hget(f"unit:job:{job.job_id}", "next_attempt_at"))
    assert status.next_attempt_at.timestamp() * 1000 == pytest.approx(next_ms, abs=1)
    assert before <= next_ms <= after + 30_000  # jittered in [0, 30 s]
    # ARQ runs the next attempt when the status says it will
    score = await arq_redis.zscore(QUEUE, job.job_id)
    assert score is not None and next_ms - 1 <= score <= next_ms + 1000
    assert await arq_redis.exists(Keys.arq_in_progress(job.job_id)) == 0
    # ARQ's job data outlives the wait
    assert await arq_redis.pttl(Keys.arq_job(job.job_id)) > next_ms - now_ms() + 86_400_000 - 5_000
    assert await no_dead_letter(arq_redis, settings, job.job_id)

    # the wait is over: the next (last) attempt fails, and the job with it
    await arq_redis.zadd(QUEUE, {job.job_id: now_ms()}, xx=True)
    await run_worker()
    assert CALLS == [("backs_off", 1), ("backs_off", 2)]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.attempt == 2
    assert status.next_attempt_at is None and status.dead_lettered is True
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts) == ("attempts_exhausted", 2)


async def test_retry_after_sets_the_exact_wait(
    job_client: JobClient, arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(backs_off, In(n=7))
    before = now_ms()
    await run_worker(max_burst_jobs=1)
    after = now_ms()
    status = await job_client.status(job.job_id)
    assert status.status is JobState.RETRYING
    assert status.next_attempt_at is not None
    next_ms = status.next_attempt_at.timestamp() * 1000
    assert before + 7_000 - 1 <= next_ms <= after + 7_000 + 1
    score = await arq_redis.zscore(QUEUE, job.job_id)
    assert score is not None and next_ms - 2 <= score <= next_ms + 1000


# -- time limits -----------------------------------------------------------------------------


async def test_hard_time_limit_stops_the_attempt_after_the_soft_limit(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(overruns, In(n=1))
    started = time.monotonic()
    worker = await run_worker()
    assert time.monotonic() - started < 2.5  # two attempts of 0.3 s, not two sleeps of 5 s
    assert (worker.jobs_retried, worker.jobs_failed) == (1, 1)
    assert CALLS == [("overruns", 1), ("overruns", 2)]
    # the soft limit (0.1 s) was signalled before the hard stop (0.3 s), which interrupted the sleep
    assert [(attempt, seen) for attempt, seen, _ in SOFT_SEEN] == [(1, True), (2, True)]
    assert all(0.05 <= elapsed < 0.3 for _, _, elapsed in SOFT_SEEN), SOFT_SEEN
    assert EVENTS == ["overruns 1 stopped", "overruns 2 stopped"]

    message = "the attempt ran longer than the hard time limit of 0.3 s and was stopped"
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.attempt == 2
    assert status.error == JobError(type="TimeLimitExceeded", message=message)
    assert status.progress is not None and status.progress.message == "soft limit reached"
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts) == ("attempts_exhausted", 2)
    assert (letter.error.type, letter.error.message) == ("TimeLimitExceeded", message)


async def test_task_that_heeds_the_soft_limit_succeeds(job_client: JobClient, run_worker: RunWorker) -> None:
    job = await job_client.enqueue(heeds_soft_limit, In(n=1))
    await run_worker()
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED and status.attempt == 1
    assert isinstance(status.result, dict)
    assert isinstance(status.result["steps"], int) and status.result["steps"] >= 1
    elapsed = status.result["elapsed_s"]
    assert isinstance(elapsed, float) and 0.05 <= elapsed < 0.5


async def test_check_soft_limit_fails_the_attempt_once_the_soft_limit_passed(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(checks_soft_limit, In(n=1))
    await run_worker()
    message = "the attempt passed its soft time limit of 0.1 s"
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.attempt == 1
    assert status.error == JobError(type="SoftTimeLimitExceeded", message=message)
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    # transient, but it was the only attempt
    assert (letter.reason, letter.attempts) == ("attempts_exhausted", 1)


# -- leases and lost workers -----------------------------------------------------------------


async def test_an_attempt_keeps_the_job_data_alive_past_its_enqueue_expiry(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(reads_job_ttl, In(n=1))
    await arq_redis.pexpire(Keys.arq_job(job.job_id), 2_000)  # about to expire when the attempt starts
    await run_worker()
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED
    expected = (20 + settings.job_expires_s) * 1000  # its time limit + the expiry, from the start
    assert isinstance(status.result, int) and expected - 2_000 < status.result <= expected


async def test_a_running_attempt_holds_a_lease_not_arqs_long_claim(
    arq_redis: ArqRedis, registry: TaskRegistry, make_worker: MakeWorker
) -> None:
    settings = make_settings(lease_s=2)
    client = JobClient(arq_redis, settings, registry)
    job = await client.enqueue(reads_lease, In(n=1))
    worker = make_worker(settings, burst=True)
    assert worker.in_progress_timeout_s == 300 + 300 + 10  # ARQ's own: longest time limit + 10 s
    try:
        await worker.main()
    finally:
        await worker.on_shutdown(worker.ctx)  # type: ignore[misc]
    assert worker.in_progress_timeout_s == 2
    status = await client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED
    assert isinstance(status.result, int) and 1_500 < status.result <= 2_000


async def test_attempt_past_max_attempts_is_dead_lettered_without_running(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=3))
    # attempt 2 of 2 was claimed (ARQ counted it) but its worker died before it finished
    await arq_redis.set(Keys.arq_retry(job.job_id), 2)
    worker = await run_worker()
    assert worker.jobs_failed == 1
    assert CALLS == []
    message = "attempt 2 of 2 did not finish: its worker stopped"
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.dead_lettered is True
    assert status.error == JobError(type="WorkerLostError", message=message)
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts, letter.max_attempts) == ("attempts_exhausted", 2, 2)
    assert (letter.error.type, letter.error.message) == ("WorkerLostError", message)
    assert letter.input == {"n": 3}
    assert this_worker(letter)


async def test_dead_letter_for_a_lost_last_attempt_names_that_attempt(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=3))
    started = now_ms() - 60_000
    # attempt 2 of 2 ran on a worker that then died; the next try only finds that out
    await arq_redis.hset(  # type: ignore[misc]
        Keys("unit").record(job.job_id),
        mapping={"attempt": 2, "started_at": started, "worker": "gone:1:abcdef"},
    )
    await arq_redis.set(Keys.arq_retry(job.job_id), 2)
    await run_worker()
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.worker, letter.attempts) == ("gone:1:abcdef", 2)
    assert letter.started_at is not None and round(letter.started_at.timestamp() * 1000) == started
    status = await job_client.status(job.job_id)
    assert (status.status, status.attempt, status.max_attempts) == (JobState.FAILED, 2, 2)
    assert status.started_at == letter.started_at


async def test_cancel_that_lands_while_an_attempt_fails_ends_the_job_instead_of_a_retry(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(cancelled_as_it_fails, In(n=1))
    await run_worker()
    assert CALLS == [("cancelled_as_it_fails", 1)]
    status = await job_client.status(job.job_id)
    assert (status.status, status.attempt, status.next_attempt_at) == (JobState.CANCELLED, 1, None)
    assert await no_dead_letter(arq_redis, settings, job.job_id)


async def test_cancelled_error_the_worker_did_not_cause_is_a_failure_not_a_shutdown(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(cancels_itself, In(n=1))
    worker = await run_worker()
    assert CALLS == [("cancels_itself", 1), ("cancels_itself", 2)]  # retried per policy, not forever
    assert (worker.jobs_failed, worker.jobs_retried) == (1, 1)
    status = await job_client.status(job.job_id)
    assert (status.status, status.attempt, status.dead_lettered) == (JobState.FAILED, 2, True)
    assert status.error is not None and status.error.type == "TaskError"
    assert status.error.message == (
        "the task raised CancelledError without being cancelled (CancelledError())"
    )
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert (letter.reason, letter.attempts) == ("attempts_exhausted", 2)


async def test_arq_max_tries_backstop_is_dead_lettered(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=3))
    await arq_redis.set(Keys.arq_retry(job.job_id), 3)  # ARQ's max_tries is max_attempts + 1
    await run_worker()
    assert CALLS == []
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert letter.reason == "attempts_exhausted"
    assert (letter.error.type, letter.error.message) == ("JobExecutionFailed", "max 3 retries exceeded")
    assert (letter.task, letter.input) == ("always_flaky", {"n": 3})
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.dead_lettered is True


# -- failures ARQ handles before running the task --------------------------------------------


async def test_unknown_function_is_dead_lettered_with_its_input(
    arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job_id = uuid.uuid4().hex
    enqueued = now_ms()
    raw = serialize_job("no_such_task", ({"a": 1},), {}, None, enqueued, serializer=dumps)
    await arq_redis.psetex(Keys.arq_job(job_id), 60_000, raw)
    await arq_redis.zadd(QUEUE, {job_id: enqueued})
    worker = await run_worker()
    assert (worker.jobs_complete, worker.jobs_failed) == (0, 1)

    letter = await dead_letters(arq_redis, settings).get(job_id)
    assert letter.reason == "unknown_task"
    assert (letter.task, letter.input) == ("no_such_task", {"a": 1})
    assert (letter.error.type, letter.error.message) == (
        "JobExecutionFailed",
        "function 'no_such_task' not found",
    )
    assert (letter.queue, letter.max_attempts, letter.enqueued_at) == (None, None, None)  # no record
    assert letter.attempts == 1  # ARQ's try count
    assert this_worker(letter)
    assert await arq_redis.zscore("unit:dead-letters:task:no_such_task", job_id) is not None
    # ARQ still cleaned up after the job and stored its failure
    assert await arq_redis.zscore(QUEUE, job_id) is None
    assert await arq_redis.exists(Keys.arq_job(job_id), Keys.arq_in_progress(job_id)) == 0
    result = loads(await arq_redis.get(Keys.arq_result(job_id)))
    assert result["s"] is False and result["f"] == "no_such_task"


async def test_dead_letter_of_a_job_without_record_leaves_no_immortal_key(
    arq_redis: ArqRedis, run_worker: RunWorker
) -> None:
    job_id = uuid.uuid4().hex
    enqueued = now_ms()
    raw = serialize_job("no_such_task", ({"a": 1},), {}, None, enqueued, serializer=dumps)
    await arq_redis.psetex(Keys.arq_job(job_id), 60_000, raw)
    await arq_redis.zadd(QUEUE, {job_id: enqueued})
    await run_worker()
    assert await arq_redis.exists(f"unit:dead:{job_id}") == 1
    # flagging a record that does not exist would create a hash without a TTL
    assert await arq_redis.exists(f"unit:job:{job_id}") == 0


async def test_expired_job_is_dead_lettered(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=4))
    await arq_redis.delete(Keys.arq_job(job.job_id))  # its data expired while it waited
    worker = await run_worker()
    assert worker.jobs_failed == 1
    assert CALLS == []
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert letter.reason == "job_expired"
    assert (letter.error.type, letter.error.message) == ("JobExecutionFailed", "job expired")
    assert (letter.task, letter.queue, letter.max_attempts) == (
        "always_flaky",
        "default",
        2,
    )  # from the record
    assert letter.input is None  # nothing left to read it from
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.dead_lettered is True
    assert status.error == JobError(type="JobExecutionFailed", message="job expired")
    assert await arq_redis.zscore(QUEUE, job.job_id) is None


async def test_undecodable_job_is_dead_lettered_with_its_text(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=4))
    await arq_redis.set(Keys.arq_job(job.job_id), b"not json")
    worker = await run_worker()
    assert worker.jobs_failed == 1
    assert CALLS == []
    letter = await dead_letters(arq_redis, settings).get(job.job_id)
    assert letter.reason == "unreadable_job"
    assert (letter.error.type, letter.error.message) == ("DeserializationError", "unable to deserialize job")
    assert (letter.task, letter.input) == ("always_flaky", "not json")
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED and status.dead_lettered is True


async def test_cancelled_job_that_arq_reports_expired_is_not_dead_lettered(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(always_flaky, In(n=4))
    cancelled = await job_client.cancel(job.job_id)  # waiting: its job data is deleted at once
    assert cancelled.status is JobState.CANCELLED
    await arq_redis.zadd(QUEUE, {job.job_id: now_ms()})  # a worker read the id before the cancel
    worker = await run_worker()
    assert worker.jobs_failed == 1  # ARQ: "job expired"
    assert CALLS == []
    assert await no_dead_letter(arq_redis, settings, job.job_id)
    assert await arq_redis.hexists(f"unit:job:{job.job_id}", "dead_lettered") == 0
    status = await job_client.status(job.job_id)
    assert status.status is JobState.CANCELLED and status.dead_lettered is False


# -- cancellation and shutdown ---------------------------------------------------------------


async def test_cancel_stops_a_running_job_within_about_a_second(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, make_worker: MakeWorker
) -> None:
    job = await job_client.enqueue(sleeper, In(n=1))
    HOLD.add(job.job_id)
    async with background(make_worker()) as worker:
        await eventually(lambda: events_include("started 1"), "the task started")
        running = await job_client.status(job.job_id)
        assert running.status is JobState.RUNNING and running.cancel_requested is False

        asked = await job_client.cancel(job.job_id)
        assert asked.status is JobState.RUNNING and asked.cancel_requested is True
        started = time.monotonic()
        final = await status_when(job_client, job.job_id, lambda s: s.is_terminal, timeout_s=3.0)
        took = time.monotonic() - started
    assert final.status is JobState.CANCELLED
    assert took < 2.2  # the next beat (every second) stops it
    assert final.cancel_requested is False and final.finished_at is not None
    assert EVENTS == ["started 1", "sleep interrupted"]
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (0, 0, 1)
    assert await no_dead_letter(arq_redis, settings, job.job_id)
    assert final.dead_lettered is False
    result = loads(await arq_redis.get(Keys.arq_result(job.job_id)))
    assert result["s"] is False
    assert result["r"]["__exception__"]["type"] == "JobCancelledError"
    assert result["r"]["__exception__"]["message"] == "cancelled while running"
    assert await arq_redis.exists(Keys.arq_job(job.job_id), Keys.arq_in_progress(job.job_id)) == 0


async def test_cancel_wins_over_a_task_that_swallows_it(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, make_worker: MakeWorker
) -> None:
    job = await job_client.enqueue(stubborn, In(n=1))
    async with background(make_worker()) as worker:
        await eventually(lambda: events_include("stubborn started"), "the task started")
        await job_client.cancel(job.job_id)
        await get_runtime(worker.ctx).beat()  # what the next heartbeat does, without waiting for it
        final = await status_when(job_client, job.job_id, lambda s: s.is_terminal, timeout_s=1.0)
    assert final.status is JobState.CANCELLED and final.result is None
    assert EVENTS == ["stubborn started", "cancel swallowed"]
    assert await no_dead_letter(arq_redis, settings, job.job_id)
    result = loads(await arq_redis.get(Keys.arq_result(job.job_id)))
    assert result["s"] is False
    assert result["r"]["__exception__"]["type"] == "JobCancelledError"


async def test_cancel_flag_seen_when_the_attempt_starts(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(sleeper, In(n=1))
    # the cancel came after ARQ claimed the job but before our wrapper started it
    await arq_redis.hset(f"unit:job:{job.job_id}", "cancel_requested", str(now_ms()))
    worker = await run_worker()
    assert worker.jobs_failed == 1
    assert EVENTS == []
    status = await job_client.status(job.job_id)
    assert status.status is JobState.CANCELLED
    assert await no_dead_letter(arq_redis, settings, job.job_id)
    result = loads(await arq_redis.get(Keys.arq_result(job.job_id)))
    assert result["r"]["__exception__"]["message"] == "cancelled before this attempt started"


async def test_a_cancel_seen_at_the_start_records_no_attempt(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, run_worker: RunWorker
) -> None:
    job = await job_client.enqueue(sleeper, In(n=1))
    record = f"unit:job:{job.job_id}"
    started = now_ms() - 30_000
    # attempt 1 ran on a worker that died; the job was cancelled before its lease ran out
    await arq_redis.hset(  # type: ignore[misc]
        record, mapping={"attempt": 1, "started_at": started, "worker": "dead:1:abcdef"}
    )
    await arq_redis.set(Keys.arq_retry(job.job_id), 1)
    await arq_redis.hset(record, "cancel_requested", str(now_ms()))  # type: ignore[misc]
    await run_worker()
    assert EVENTS == []
    status = await job_client.status(job.job_id)
    assert (status.status, status.attempt) == (JobState.CANCELLED, 1)
    assert status.started_at is not None and round(status.started_at.timestamp() * 1000) == started
    assert await arq_redis.hget(record, "worker") == b"dead:1:abcdef"  # type: ignore[misc]


@pytest.mark.parametrize("handler", ["handle_sig", "handle_sig_wait_for_completion"])
async def test_worker_shutdown_puts_the_job_back_without_using_an_attempt(
    handler: str,
    job_client: JobClient,
    arq_redis: ArqRedis,
    settings: Settings,
    make_worker: MakeWorker,
    run_worker: RunWorker,
) -> None:
    job = await job_client.enqueue(sleeper, In(n=1))  # max_attempts=1: a counted attempt would be its last
    HOLD.add(job.job_id)
    # ARQ's SIGTERM handler: handle_sig cancels running jobs at once; with job_completion_wait (our
    # shutdown_grace_s) it waits that long first
    async with background(make_worker(job_completion_wait=1)) as worker:
        await eventually(lambda: events_include("started 1"), "the task started")
        assert await arq_redis.get(Keys.arq_retry(job.job_id)) == b"1"
        getattr(worker, handler)(signal.SIGTERM)
        await stopped(worker)
    assert EVENTS == ["started 1", "sleep interrupted"]
    assert (worker.jobs_complete, worker.jobs_retried, worker.jobs_failed) == (0, 1, 0)

    status = await job_client.status(job.job_id)
    assert status.status is JobState.PENDING
    assert await arq_redis.exists(Keys.arq_in_progress(job.job_id), Keys.arq_result(job.job_id)) == 0
    assert await arq_redis.exists(Keys.arq_job(job.job_id)) == 1
    assert await arq_redis.zscore(QUEUE, job.job_id) is not None
    assert await arq_redis.get(Keys.arq_retry(job.job_id)) == b"0"  # the attempt was given back

    HOLD.clear()
    await run_worker()
    assert EVENTS == ["started 1", "sleep interrupted", "started 1", "finished"]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SUCCEEDED and status.attempt == 1
    assert status.result == "done"
    assert await no_dead_letter(arq_redis, settings, job.job_id)
