"""Everything of ARQ that is not its documented API, in one place.

ARQ is pinned at 0.28.0 and in maintenance-only mode, and where it offers no hook we adapt its
internals. Other modules use ARQ's documented API directly (the `Worker` options and type, `func`
and the `Function` it returns, `Retry(defer=...)`, `ArqRedis`, `RedisSettings`, `create_pool`,
`Job`) and everything else through this module, which imports nothing of ours. Each assumption
below has a test in tests/unit/test_arq_assumptions.py that names it when another ARQ breaks it;
the recorded source hashes flag any upstream change to a method whose behaviour we copy or depend
on.

Assumptions, and the ARQ 0.28.0 code each relies on:

1. The installed arq is 0.28.0 (`arq.version.VERSION`, the distribution's metadata).
2. ARQ's keys are `arq.constants` `job_key_prefix` 'arq:job:', `in_progress_key_prefix`
   'arq:in-progress:', `result_key_prefix` 'arq:result:', `retry_key_prefix` 'arq:retry:' plus the
   job id, and the sorted set `abort_jobs_ss` 'arq:abort'; our scripts (enqueue, claim, begin,
   finish, cancel, give-back) read and write those keys beside ARQ.
3. `arq.utils.timestamp_ms()` is ARQ's clock (rounded int ms: the claim compares queue scores with
   it, as `_poll_iteration` does) and `arq.utils.to_ms(seconds | timedelta | None)` converts
   durations as `finish_job` does (rounded int ms; None stays None).
4. Job data: `arq.jobs.serialize_job(function_name, args, kwargs, job_try, enqueue_time_ms, *,
   serializer)` makes the job key's value, a serialized {t, f, a, k, et}, or raises
   `arq.jobs.SerializationError`; our enqueue script (arq_jobs._jobs.enqueue) stores it as
   `ArqRedis.enqueue_job` does: the job key with a PX expiry and the queue's ZSET entry scored by
   the run-at time in ms.
5. A stored result is `arq.jobs.serialize_result`'s {t, f, a, k, et, s, r, st, ft, q, id}:
   arq_jobs._jobs.status, _jobs.details and _worker.outcomes read `t`, `f`, `a`, `s`, `r`, `st`,
   `ft` of it, and a finished attempt's event carries `s`, `r`, `ft` alike.
6. `Worker.main` logs Redis' INFO through the module global `log_redis_info`, sets
   `ctx['redis']`, awaits `on_startup(self.ctx)` with the Worker's own ctx dict, then loops
   `async for _ in poll(self.poll_delay_s): await self._poll_iteration()`, reading the module
   global `poll` and the instance's `_poll_iteration` only after on_startup (`find_worker`,
   `adopt`; a harness that polls by itself, arq_jobs.testing, does what main does before its loop
   and then `poll_once`).
7. `arq.worker.poll` is the module-level name of `arq.utils.poll(step=0.5)`, an async generator
   that yields, then sleeps what is left of `step`; `Wakeup.poll` (arq_jobs._worker.wakeup) is that
   body with a sleep that an event ends early (`adopt(poll=...)`; `poll_kept` undoes it).
8. `claim_iteration` is `Worker._poll_iteration` + `start_jobs` with one claim for a batch: per
   started job `sem.acquire()`, `job_counter += 1`, `loop.create_task(self.run_job(job_id,
   score))` kept in `tasks[job_id]` with the done-callback `_release_sem_dec_counter_on_complete`;
   done tasks reaped from `tasks`, then `heart_beat()`; it reads `max_jobs`, `job_counter`,
   `allow_pick_jobs` (False once a shutdown waits for running jobs), `queue_read_limit`, `pool`,
   `queue_name`. Burst limits and abort requests are not handled (we use neither). A claimed job
   whose run_job task is still in `tasks` is not started again (its lease lapsed in a Redis outage
   while it ran here: the claim renewed it for the running attempt).
9. `Worker.in_progress_timeout_s` is the TTL `start_jobs` gives the in-progress key, read nowhere
   else: `adopt(lease_s=...)` sets it and `claim_iteration` leases claimed jobs for it.
10. `Worker.finish_job(job_id, finish, result_data, result_timeout_s, keep_result_forever,
    incr_score, keep_in_progress)` is one MULTI/EXEC on ARQ's keys; `adopt(finish_job=...)`
    replaces it by one that runs arq_jobs._worker.finish.FINISH_SCRIPT, the same writes plus ours.
11. `Worker.finish_failed_job(job_id, result_data)` ends the jobs that fail before any hook or task
    code runs; `adopt(before_finish_failed_job=...)` runs our dead-lettering first, then ARQ's.
12. `Worker.run_job` ends each attempt it ran with `self.finish_job(...)` (seven positional
    arguments) and each early failure (job data expired, undecodable, unknown function, aborted,
    over max_tries) with `self.finish_failed_job(job_id, result_data)`; INCRs the retry key per
    attempt (job_try, which arq_jobs._worker.runner's give-back script DECRs at shutdown); gives the
    task ctx `job_id`, `job_try`, `score`; and logs per-job lines on `arq.worker.logger`.
13. `Worker.tasks[job_id]` is the job's run_job task; `handle_sig` and, after
    `job_completion_wait`, `_wait_for_tasks_to_complete` cancel those tasks at shutdown (a time
    limit cancels only the inner job task): `run_job_task`, `stop_running`.
14. `arq.worker.logger` (the logger 'arq.worker') is a module global run_job logs through, with the
    format strings in PER_JOB_LOG_FORMATS: `quiet_job_lines` wraps it to drop them.
15. `Retry.defer_score` is the `defer` given to `Retry`, in ms (None without): `retry_defer_s`.
16. `arq.worker.log_redis_info` is the module global `Worker.main` sends INFO with, which fakeredis
    does not know: unit tests run workers `without_redis_info()`.
17. `Worker.record_health` (called by `heart_beat`) writes the health-check key only when
    `health_check_interval` has passed since `Worker._last_health_check`, which it sets before
    writing: `record_health_soon` zeroes it so the next poll writes the key (after a Redis outage,
    whose failed write still counted as one).
18. `Worker.main` and `async_check_health` (`arq --check`) open their pool through the module
    global `arq.worker.create_pool(settings, *, retry=0, job_serializer, job_deserializer,
    default_queue_name, expires_extra_ms)`, which with `sentinel=True` builds `Sentinel(...)` from
    `host`, `ssl`, `database`, `username` and `password` only (no TLS files, timeouts or Sentinel
    password): `open_pools_own_way` makes it open an `OwnPoolSettings`' pool with its `open_pool`,
    pinged and retried as ARQ does (`conn_retries` times, `conn_retry_delay` s apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import arq.connections
import arq.worker
from arq.connections import ArqRedis, RedisSettings
from arq.constants import (
    abort_jobs_ss,
    default_queue_name,
    expires_extra_ms,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.jobs import Deserializer, Serializer
from arq.jobs import SerializationError as SerializationError
from arq.jobs import serialize_job as serialize_job
from arq.utils import timestamp_ms as timestamp_ms
from arq.utils import to_ms as to_ms
from arq.worker import Retry, Worker
from redis.exceptions import RedisError

from arq_jobs._redis_errors import describe_redis_error

VERSION: Final = "0.28.0"  # the ARQ every assumption here was read off (1)

# 2: ARQ's keys
JOB_PREFIX: Final = job_key_prefix
IN_PROGRESS_PREFIX: Final = in_progress_key_prefix
RESULT_PREFIX: Final = result_key_prefix
RETRY_PREFIX: Final = retry_key_prefix
ABORT_SET: Final = abort_jobs_ss

# 14: the logger run_job writes per-job lines to, and their format strings: start, success,
# failure (with traceback), retry, re-queue at shutdown
LOGGER_NAME: Final = "arq.worker"
PER_JOB_LOG_FORMATS: Final = frozenset(
    {
        "%6.2fs → %s(%s)%s",
        "%6.2fs ← %s ● %s",
        "%6.2fs ! %s failed, %s: %s",
        "%6.2fs ↻ %s retrying job in %0.2fs",
        "%6.2fs ↻ %s cancelled, will be run again",
    }
)


class Poll(Protocol):
    """`arq.utils.poll`'s signature (7)."""

    def __call__(self, step: float = 0.5) -> AsyncGenerator[float, None]: ...


Iteration = Callable[[], Coroutine[Any, Any, None]]


class FinishJob(Protocol):
    """`Worker.finish_job`'s signature (10)."""

    async def __call__(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None: ...


FinishFailedJob = Callable[[str, bytes | None], Awaitable[None]]


def find_worker(ctx: dict[str, Any]) -> Worker | None:
    """The ARQ Worker whose `ctx` this is (the dict on_startup receives: 6)."""
    for holder in gc.get_referrers(ctx):
        if isinstance(holder, Worker) and holder.ctx is ctx:
            return holder
        if isinstance(holder, dict):  # the instance's __dict__ on interpreters without inline values
            for owner in gc.get_referrers(holder):
                if isinstance(owner, Worker) and owner.ctx is ctx:
                    return owner
    return None


def redis_of(worker: Worker) -> ArqRedis:
    """The worker's pool (set before on_startup: 6)."""
    return worker.pool


def queue_of(worker: Worker) -> str:
    """The key of the queue the worker takes jobs from."""
    return worker.queue_name


def adopt(
    worker: Worker,
    *,
    lease_s: float,
    poll: Poll,
    poll_iteration: Iteration,
    finish_job: FinishJob,
    before_finish_failed_job: FinishFailedJob,
) -> None:
    """Bend a Worker from its on_startup, before its poll loop starts (6): claims lease jobs for
    `lease_s` (9), the loop sleeps in `poll` (7) and runs `poll_iteration` (8), attempts end in
    `finish_job` (10), and jobs failed before any task code run `before_finish_failed_job` before
    ARQ's own finish_failed_job (11)."""
    worker.in_progress_timeout_s = lease_s
    worker._poll_iteration = poll_iteration  # type: ignore[method-assign]
    # a module global, read by Worker.main after on_startup: per process, the last adopted worker's
    arq.worker.poll = poll  # type: ignore[attr-defined]
    worker.finish_job = finish_job  # type: ignore[method-assign]
    original: FinishFailedJob = worker.finish_failed_job

    async def finish_failed_job(job_id: str, result_data: bytes | None) -> None:
        await before_finish_failed_job(job_id, result_data)
        await original(job_id, result_data)

    worker.finish_failed_job = finish_failed_job  # type: ignore[method-assign]


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One poll's claim: up to `free` jobs of `queue` due at `now_ms` (ARQ's clock), each leased for
    `lease_ms`, looking at `scan` queue entries at most (running jobs stay in ARQ's queue until they
    finish, so the first entries are often taken)."""

    redis: ArqRedis
    queue: str
    now_ms: int
    free: int
    lease_ms: int
    scan: int


Claim = Callable[[ClaimRequest], Awaitable[Sequence[tuple[str, int]]]]


def claim_iteration(
    worker: Worker,
    claim: Claim,
    *,
    full: Callable[[], None],
    slot_freed: Callable[[int, int], None],
    run_job_failed: Callable[[str, BaseException], None],
) -> Iteration:
    """ARQ's `_poll_iteration` with `claim` taking the jobs to start, as (job id, score) pairs, in one
    call (8; not for burst mode). `full`: no slot was free; `slot_freed(free, slots)`: a started job's run_job
    ended; `run_job_failed`: a run_job task raised."""

    async def iteration() -> None:
        free = worker.max_jobs - worker.job_counter
        if free <= 0:
            full()
        elif worker.allow_pick_jobs:
            lease_ms = round(worker.in_progress_timeout_s * 1000)
            scan = worker.queue_read_limit + worker.max_jobs
            request = ClaimRequest(worker.pool, worker.queue_name, timestamp_ms(), free, lease_ms, scan)
            for job_id, score in await claim(request):
                running = worker.tasks.get(job_id)
                if running is None or running.done():
                    await _start(worker, job_id, score, slot_freed)
        for job_id, task in list(worker.tasks.items()):
            if task.done():
                del worker.tasks[job_id]
                # ARQ re-raises an error of run_job itself here, which ends the worker and every job
                # it runs; one job's bookkeeping error is reported instead (its lease runs out, ARQ's
                # max tries dead-letters it if it keeps failing)
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    run_job_failed(job_id, error)
        await worker.heart_beat()

    return iteration


async def _start(worker: Worker, job_id: str, score: int, slot_freed: Callable[[int, int], None]) -> None:
    """Start a claimed job's `run_job` as ARQ's start_jobs does (its slot is free: no waiting)."""
    await worker.sem.acquire()
    worker.job_counter += 1
    task = worker.loop.create_task(worker.run_job(job_id, score))
    task.add_done_callback(lambda _: _finished(worker, slot_freed))
    worker.tasks[job_id] = task


def _finished(worker: Worker, slot_freed: Callable[[int, int], None]) -> None:
    worker._release_sem_dec_counter_on_complete()
    slot_freed(worker.max_jobs - worker.job_counter, worker.max_jobs)


def record_health_soon(worker: Worker) -> None:
    """Make the worker's next heart_beat write its health-check key (17)."""
    worker._last_health_check = 0


async def poll_once(worker: Worker) -> list[tuple[str, asyncio.Task[Any]]]:
    """One turn of the worker's poll loop, for a harness that polls instead of running Worker.main
    (6, 8): the jobs it started, with their run_job tasks (13)."""
    before = set(worker.tasks.values())
    await worker._poll_iteration()
    return [(job_id, task) for job_id, task in worker.tasks.items() if task not in before]


@contextlib.contextmanager
def poll_kept() -> Iterator[None]:
    """After the block, `arq.worker.poll` is what it was before it: for a harness that runs
    on_startup, whose adopt() re-points it (7), without the Worker.main that would poll with it."""
    poll = arq.worker.poll  # type: ignore[attr-defined]
    try:
        yield
    finally:
        arq.worker.poll = poll  # type: ignore[attr-defined]


async def stop_running(worker: Worker) -> None:
    """Cancel the worker's run_job tasks and wait for them, as a shutdown does (13)."""
    for task in worker.tasks.values():
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    worker.tasks.clear()


def run_job_task(worker: Worker, job_id: str) -> asyncio.Task[Any] | None:
    """The run_job task of `job_id`, which ARQ cancels when the worker shuts down (13)."""
    return worker.tasks.get(job_id)


def retry_defer_s(retry: Retry) -> float:
    """How long `retry` defers its job, in seconds (15)."""
    return (retry.defer_score or 0) / 1000


class ArqWorkerLogger(logging.LoggerAdapter[logging.Logger]):
    """arq.worker's module logger with its per-job lines dropped before a record is made for them
    (two per job; arq_jobs._logs.DropArqJobLines drops them too, but only after the record is built)."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg in PER_JOB_LOG_FORMATS:
            return
        self.logger.log(level, msg, *args, **kwargs)


def quiet_job_lines() -> None:
    """Replace arq.worker's module logger by an ArqWorkerLogger (in a worker process: 14)."""
    if not isinstance(arq.worker.logger, ArqWorkerLogger):
        arq.worker.logger = ArqWorkerLogger(arq.worker.logger, {})  # type: ignore[assignment]


@contextlib.contextmanager
def without_redis_info() -> Iterator[None]:
    """Inside the block, Worker.main skips its INFO call (16), which fakeredis does not know."""

    async def no_info(redis: object, log_func: object) -> None:
        return None

    original = arq.worker.log_redis_info  # type: ignore[attr-defined]
    arq.worker.log_redis_info = no_info  # type: ignore[attr-defined]
    try:
        yield
    finally:
        arq.worker.log_redis_info = original  # type: ignore[attr-defined]


@dataclass(repr=False)
class OwnPoolSettings(RedisSettings):
    """ARQ's RedisSettings (its fields filled in alike) whose pool `open_pool` makes (18)."""

    open_pool: Callable[[], ArqRedis] | None = None


async def create_pool(
    settings_: RedisSettings | None = None,
    *,
    retry: int = 0,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
    default_queue_name: str = default_queue_name,
    expires_extra_ms: int = expires_extra_ms,
) -> ArqRedis:
    """`arq.connections.create_pool`, but an OwnPoolSettings' pool comes from its `open_pool` (18)."""
    arq_options = {
        "job_serializer": job_serializer,
        "job_deserializer": job_deserializer,
        "default_queue_name": default_queue_name,
        "expires_extra_ms": expires_extra_ms,
    }
    if not isinstance(settings_, OwnPoolSettings) or settings_.open_pool is None:
        return await ARQ_CREATE_POOL(settings_, retry=retry, **arq_options)  # type: ignore[arg-type]
    while True:
        pool = settings_.open_pool()
        for name, value in arq_options.items():
            setattr(pool, name, value)
        try:
            await pool.ping()
        except (TimeoutError, OSError, RedisError) as error:
            await pool.aclose()
            if retry >= settings_.conn_retries:
                raise
            retry += 1
            remaining = settings_.conn_retries - retry + 1
            logging.getLogger("arq.connections").warning(
                "redis connection error %s, %s retries remaining...", describe_redis_error(error), remaining
            )
            await asyncio.sleep(settings_.conn_retry_delay)
        else:
            return pool


ARQ_CREATE_POOL: Final = arq.connections.create_pool


def open_pools_own_way() -> None:
    """Make the worker and `arq --check` open an OwnPoolSettings' pool with its `open_pool` (18);
    every other RedisSettings still goes to ARQ's create_pool."""
    arq.worker.create_pool = create_pool  # type: ignore[attr-defined]
