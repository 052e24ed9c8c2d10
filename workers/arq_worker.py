"""Adjustments to the running ARQ `Worker`, made from on_startup (the arq CLI builds the Worker
itself, so there is no subclass to give it): ARQ 0.28 is in maintenance mode and these fix, in our
layer, what it does not do.

- Claims take a lease of `lease_s`, not "longest time limit + 10 s": a job whose worker dies between
  ARQ's claim and the start of our wrapper is still recovered within the lease.
- Failures ARQ handles before any task code or hook runs (job data expired, unknown function,
  undecodable job, max tries) are dead-lettered instead of only logged.
- A finished attempt's transition (event, indexes) is written in the same transaction as ARQ's
  result (`finish_job` is ARQ 0.28's own, plus that one command): no extra round trip per job, and
  no moment where the event says `succeeded` while the result is missing.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.constants import abort_jobs_ss
from arq.utils import to_ms
from arq.worker import Worker

from jobcore.keys import Keys
from workers.outcomes import dead_letter_refused
from workers.runtime import Runtime

log = logging.getLogger(__name__)

FinishFailed = Callable[[str, bytes | None], Awaitable[None]]


def find_worker(ctx: dict[str, Any]) -> Worker | None:
    """The ARQ Worker whose `ctx` this is (the dict on_startup receives)."""
    for holder in gc.get_referrers(ctx):
        if isinstance(holder, Worker) and holder.ctx is ctx:
            return holder
        if isinstance(holder, dict):  # the instance's __dict__ on interpreters without inline values
            for owner in gc.get_referrers(holder):
                if isinstance(owner, Worker) and owner.ctx is ctx:
                    return owner
    return None


def adopt(ctx: dict[str, Any], runtime: Runtime) -> Worker | None:
    """Adjust the ARQ Worker running `ctx`; `runtime.finishing` holds the transitions of attempts that
    ended, by job id, for `finish_job` to write."""
    resources = runtime.resources
    finishing = runtime.finishing
    worker = find_worker(ctx)
    if worker is None:
        log.warning("ARQ worker not found: leases fall back to ARQ's, early failures are not dead-lettered")
        return None
    worker.in_progress_timeout_s = resources.settings.lease_s
    pool = worker.pool
    queue_name = worker.queue_name

    async def finish_job(
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        transition = finishing.pop(job_id, None)
        async with pool.pipeline(transaction=True) as tr:  # ARQ 0.28's Worker.finish_job, plus ours
            delete_keys = []
            in_progress_key = Keys.arq_in_progress(job_id)
            if keep_in_progress is None:
                delete_keys += [in_progress_key]
            else:
                tr.pexpire(in_progress_key, to_ms(keep_in_progress) or 0)
            if finish:
                if result_data:
                    expire = None if keep_result_forever else result_timeout_s
                    tr.set(Keys.arq_result(job_id), result_data, px=to_ms(expire))
                delete_keys += [Keys.arq_retry(job_id), Keys.arq_job(job_id)]
                tr.zrem(abort_jobs_ss, job_id)
                tr.zrem(queue_name, job_id)
            elif incr_score:
                tr.zincrby(queue_name, incr_score, job_id)
            if delete_keys:
                tr.delete(*delete_keys)
            if transition is not None:
                transition.queue_on(tr, resources.settings)
            await tr.execute()

    worker.finish_job = finish_job  # type: ignore[method-assign]
    original: FinishFailed = worker.finish_failed_job

    async def finish_failed_job(job_id: str, result_data: bytes | None) -> None:
        try:
            await dead_letter_refused(runtime, job_id, result_data)
        except Exception:  # never keep ARQ from cleaning up the job
            log.exception("could not dead-letter job %s", job_id)
        await original(job_id, result_data)

    worker.finish_failed_job = finish_failed_job  # type: ignore[method-assign]
    return worker
