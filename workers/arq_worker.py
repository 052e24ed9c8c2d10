"""Adjustments to the running ARQ `Worker`, made from on_startup (the arq CLI builds the Worker
itself, so there is no subclass to give it): ARQ 0.28 is in maintenance mode and these fix, in our
layer, what it does not do.

- Claims take a lease of `lease_s`, not "longest time limit + 10 s": a job whose worker dies between
  ARQ's claim and the start of our wrapper is still recovered within the lease.
- Failures ARQ handles before any task code or hook runs (job data expired, unknown function,
  undecodable job, max tries) are dead-lettered instead of only logged.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from arq.worker import Worker

from jobcore.context import Resources
from workers.outcomes import dead_letter_refused

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


def adopt(ctx: dict[str, Any], resources: Resources) -> Worker | None:
    worker = find_worker(ctx)
    if worker is None:
        log.warning("ARQ worker not found: leases fall back to ARQ's, early failures are not dead-lettered")
        return None
    worker.in_progress_timeout_s = resources.settings.lease_s
    original: FinishFailed = worker.finish_failed_job

    async def finish_failed_job(job_id: str, result_data: bytes | None) -> None:
        try:
            await dead_letter_refused(resources, job_id, result_data)
        except Exception:  # never keep ARQ from cleaning up the job
            log.exception("could not dead-letter job %s", job_id)
        await original(job_id, result_data)

    worker.finish_failed_job = finish_failed_job  # type: ignore[method-assign]
    return worker
