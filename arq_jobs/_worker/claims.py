"""Claiming due jobs in one round trip per poll, instead of ARQ's read + four round trips per job.

ARQ 0.28 polls with ZRANGEBYSCORE, then claims each job in its own WATCH / EXISTS / ZSCORE /
MULTI-PSETEX-EXEC exchange. `CLAIM_SCRIPT` does the same checks for a whole batch inside Redis: a job
is claimed when it is due, still in the queue and nobody holds its in-progress key, by setting that
key (the lease) — atomically, so two workers never claim one job. `poll_iteration` puts it in
ARQ's `_poll_iteration` (`arq_jobs._arq.claim_iteration`: start the claimed jobs' `run_job` tasks
under ARQ's own semaphore and counters, reap finished tasks, record ARQ's health check).

A Redis error in an iteration (ARQ's `Worker.main` would end the worker with it) is reported to the
process's `RedisHealth` instead, and the next iteration waits its backoff: no job is claimed while
Redis is away, the running ones go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from arq.worker import Worker

from arq_jobs import _arq
from arq_jobs._keys import Keys
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script
from arq_jobs._worker.outage import REDIS_ERRORS, RedisHealth
from arq_jobs._worker.wakeup import Wakeup

log = logging.getLogger(__name__)

CLAIM_SCRIPT = load_script("claim-1.lua")


def poll_iteration(
    worker: Worker,
    wakeup: Wakeup,
    limits: Sequence[str | int | float] = (),
    health: RedisHealth | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A replacement for ARQ's poll iteration (`arq_jobs._arq.claim_iteration`) claiming with
    CLAIM_SCRIPT; `limits`: the claim script's arguments for limited tasks (WorkerLimits.claim_args);
    `health`: what Redis errors are reported to."""
    in_progress_prefix = Keys.arq_in_progress("")
    health = health or RedisHealth()

    async def claim(request: _arq.ClaimRequest) -> list[tuple[str, int]]:
        args = CLAIM_SCRIPT.args(
            now=request.now_ms,
            lease_ms=request.lease_ms,
            want=request.free,
            scan=request.scan,
            in_progress_prefix=in_progress_prefix,
            limits=limits,
        )
        answer = await run_script(request.redis, CLAIM_SCRIPT, CLAIM_SCRIPT.keys(queue=request.queue), args)
        health.recovered(wrote=len(answer) > 1)  # it leased the jobs it answers
        wakeup.claimed(answer[0] == 1)
        return [(answer[index].decode(), int(float(answer[index + 1]))) for index in range(1, len(answer), 2)]

    def run_job_failed(job_id: str, error: BaseException) -> None:
        if isinstance(error, REDIS_ERRORS):  # ARQ's start or end of the job: it runs once its lease ends
            health.failed(error)
            log.info(
                "job %s not run or not recorded: Redis unavailable (%s)", job_id, describe_redis_error(error)
            )
        else:
            log.error("run_job of job %s failed", job_id, exc_info=error)

    # no free slot: jobs may be due (a wake-up brought us here), look again when a slot frees
    iteration = _arq.claim_iteration(
        worker,
        claim,
        full=lambda: wakeup.claimed(True),
        slot_freed=wakeup.slot_freed,
        run_job_failed=run_job_failed,
    )

    async def riding_out_outages() -> None:
        if not health.up:
            await health.backoff()
            _arq.record_health_soon(worker)  # its last write failed: `arq --check` would wait for it
        try:
            await iteration()
        except REDIS_ERRORS as error:
            health.failed(error)

    return riding_out_outages
