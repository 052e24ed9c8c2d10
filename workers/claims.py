"""Claiming due jobs in one round trip per poll, instead of ARQ's read + four round trips per job.

ARQ 0.28 polls with ZRANGEBYSCORE, then claims each job in its own WATCH / EXISTS / ZSCORE /
MULTI-PSETEX-EXEC exchange. `CLAIM_SCRIPT` does the same checks for a whole batch inside Redis: a job
is claimed when it is due, still in the queue and nobody holds its in-progress key, by setting that
key (the lease) — atomically, so two workers never claim one job. `poll_iteration` is the body of
ARQ's `_poll_iteration` around it: start the claimed jobs' `run_job` tasks under ARQ's own
semaphore and counters, reap finished tasks, record ARQ's health check.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from jobcore.scripts import run_script
from workers.wakeup import Wakeup

# KEYS[1]: queue. ARGV: now (ms), lease (ms), how many to claim, how many queue entries to look at
# at most (running jobs stay in ARQ's queue until they finish, so the first entries are often taken).
# Answers {more, id1, score1, id2, score2, ...}: `more` is 1 when due jobs were left unclaimed.
CLAIM_SCRIPT = f"""
local want = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local claimed = {{0}}
local offset = 0
while offset < scan do
  local page = math.min(200, scan - offset)
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, page)
  for i = 1, #due, 2 do
    local lease = '{in_progress_key_prefix}' .. due[i]
    if redis.call('EXISTS', lease) == 0 then
      if (#claimed - 1) / 2 >= want then
        claimed[1] = 1
        return claimed
      end
      redis.call('PSETEX', lease, ARGV[2], '1')
      claimed[#claimed + 1] = due[i]
      claimed[#claimed + 1] = due[i + 1]
    end
  end
  if #due < page * 2 then return claimed end
  offset = offset + page
end
claimed[1] = 1
return claimed
"""


def poll_iteration(worker: Worker, wakeup: Wakeup) -> Callable[[], Coroutine[Any, Any, None]]:
    """A replacement for `worker._poll_iteration` (not for burst mode, which we do not use)."""

    async def iteration() -> None:
        free = worker.max_jobs - worker.job_counter
        if free <= 0:  # jobs may be due (a wake-up brought us here): look again when a slot frees
            wakeup.claimed(True)
        elif worker.allow_pick_jobs:
            lease_ms = round(worker.in_progress_timeout_s * 1000)
            scan = worker.queue_read_limit + worker.max_jobs
            answer = await run_script(
                worker.pool, CLAIM_SCRIPT, [worker.queue_name], [timestamp_ms(), lease_ms, free, scan]
            )
            wakeup.claimed(answer[0] == 1)
            for index in range(1, len(answer), 2):
                await start(worker, wakeup, answer[index].decode(), int(float(answer[index + 1])))
        for job_id, task in list(worker.tasks.items()):
            if task.done():
                del worker.tasks[job_id]
                task.result()  # ARQ does this to surface errors of run_job itself
        await worker.heart_beat()

    return iteration


async def start(worker: Worker, wakeup: Wakeup, job_id: str, score: int) -> None:
    """Start a claimed job's `run_job` as ARQ's start_jobs does (its slot is free: no waiting)."""
    await worker.sem.acquire()
    worker.job_counter += 1
    task = worker.loop.create_task(worker.run_job(job_id, score))
    task.add_done_callback(lambda _: finished(worker, wakeup))
    worker.tasks[job_id] = task


def finished(worker: Worker, wakeup: Wakeup) -> None:
    worker._release_sem_dec_counter_on_complete()
    wakeup.slot_freed()
