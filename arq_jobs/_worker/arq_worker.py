"""Adjustments to the running ARQ `Worker`, made from on_startup (the arq CLI builds the Worker
itself, so there is no subclass to give it): ARQ 0.28 is in maintenance mode and these fix, in our
layer, what it does not do. How each reaches into ARQ, and what it assumes, is in `arq_jobs._arq`.

- Claims take a lease of `lease_s`, not "longest time limit + 10 s": a job whose worker dies between
  ARQ's claim and the start of our wrapper is still recovered within the lease.
- Failures ARQ handles before any task code or hook runs (job data expired, unknown function,
  undecodable job, max tries) are dead-lettered instead of only logged.
- Claims: one script per poll claims a batch (`arq_jobs._worker.claims`), and the sleep between polls ends
  early when a job is enqueued or a slot frees up while jobs wait (`arq_jobs._worker.wakeup`).
- A finished attempt's transition (event, indexes) is written in the same script as ARQ's result
  (`arq_jobs._worker.finish`: ARQ 0.28's `finish_job` transaction plus ours): no extra round trip per job, no
  moment where the event says `succeeded` while the result is missing, and the ends of jobs that
  finish together go to Redis in one batch.
- A Redis outage does not end the worker (ARQ's would exit): claims pause and the end of each attempt
  is written once Redis answers again, held for up to `outage_hold_s` (`arq_jobs._worker.outage`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from arq.worker import Worker

from arq_jobs import _arq
from arq_jobs._clock import now_ms
from arq_jobs._keys import Keys
from arq_jobs._limits.worker import RELEASE_SCRIPT
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._worker.claims import poll_iteration
from arq_jobs._worker.finish import FINISH_SCRIPT, finish_call
from arq_jobs._worker.outage import REDIS_ERRORS, OutageGaveUp
from arq_jobs._worker.outcomes import dead_letter_refused
from arq_jobs._worker.runtime import Runtime
from arq_jobs._worker.wakeup import Wakeup

log = logging.getLogger(__name__)


def adopt(ctx: dict[str, Any], runtime: Runtime) -> Worker | None:
    """Adjust the ARQ Worker running `ctx`; `runtime.finishing` holds the transitions of attempts that
    ended, by job id, for `finish_job` to write."""
    resources = runtime.resources
    finishing = runtime.finishing
    worker = _arq.find_worker(ctx)
    if worker is None:
        log.warning("ARQ worker not found: leases fall back to ARQ's, early failures are not dead-lettered")
        return None
    queue_name = _arq.queue_of(worker)
    health = runtime.health
    wakeup = Wakeup(_arq.redis_of(worker), Keys.wake_channel(queue_name), health)
    runtime.wakeup = wakeup

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
        keep_s = None if transition is None else transition.keep_s(resources.settings)
        if keep_s is not None:  # ARQ's result lives as long as the record
            result_timeout_s, keep_result_forever = keep_s, False
        keys, args = finish_call(
            resources.settings,
            queue_name,
            job_id,
            finish=finish,
            result_data=result_data,
            result_timeout_s=result_timeout_s,
            keep_result_forever=keep_result_forever,
            incr_score=incr_score,
            keep_in_progress=keep_in_progress,
            transition=transition,
        )
        release = runtime.limits.release_call(job_id, now_ms())

        async def write() -> None:
            finishing_call = runtime.batch.call(FINISH_SCRIPT, keys, args)
            if release is None:
                await finishing_call
            else:  # both in one batch
                await asyncio.gather(finishing_call, runtime.batch.call(RELEASE_SCRIPT, *release))

        try:
            await health.hold(write)
        except OutageGaveUp as error:
            log.error(
                "job %s: the end of its attempt was not recorded after %.0f s of Redis outage (%r); "
                "it runs again once its lease runs out",
                job_id,
                health.hold_s,
                error,
            )

    async def dead_letter_first(job_id: str, result_data: bytes | None) -> None:
        try:
            await dead_letter_refused(runtime, job_id, result_data)
        except REDIS_ERRORS as error:  # its message may hold the dead letter: never logged
            log.error("could not dead-letter job %s: %s", job_id, describe_redis_error(error))
        except Exception:  # never keep ARQ from cleaning up the job
            log.exception("could not dead-letter job %s", job_id)

    _arq.adopt(
        worker,
        lease_s=resources.settings.lease_s,
        poll=wakeup.poll,
        poll_iteration=poll_iteration(worker, wakeup, runtime.limits.claim_args(), health),
        finish_job=finish_job,
        before_finish_failed_job=dead_letter_first,
    )
    return worker
