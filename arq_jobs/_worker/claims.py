"""Claiming due jobs in one round trip per poll, instead of ARQ's read + four round trips per job.

ARQ 0.28 polls with ZRANGEBYSCORE, then claims each job in its own WATCH / EXISTS / ZSCORE /
MULTI-PSETEX-EXEC exchange. `CLAIM_SCRIPT` does the same checks for a whole batch inside Redis: a job
is claimed when it is due, still in the queue and nobody holds its in-progress key, by setting that
key (the lease) — atomically, so two workers never claim one job. `poll_iteration` is the body of
ARQ's `_poll_iteration` around it: start the claimed jobs' `run_job` tasks under ARQ's own
semaphore and counters, reap finished tasks, record ARQ's health check.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from arq.constants import in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from arq_jobs._jobs.records import TASK, THROTTLE, THROTTLED_UNTIL
from arq_jobs._scripts.run import run_script
from arq_jobs._worker.wakeup import Wakeup

log = logging.getLogger(__name__)

# KEYS[1]: queue. ARGV: now (ms), lease (ms), how many to claim, how many queue entries to look at
# at most (running jobs stay in ARQ's queue until they finish, so the first entries are often taken),
# then, when some tasks have limits: the key prefix, how many limited tasks, and per task its name,
# its rate's interval (ms, 0 = none) and its max running (0 = none).
# Answers {more, id1, score1, id2, score2, ...}: `more` is 1 when due jobs were left unclaimed.
# A due job of a limited task over its limit is not claimed: it is moved to the time it may try again
# and its record says why (`throttle`, `throttled_until`); no attempt is counted.
# - rate (GCRA, no burst): a start at most every interval after the previous one (`:rate` holds when
#   the next may start). A job seen for the first time takes the next free slot behind those already
#   given out (`:slots` holds the last one), so a backlog is parked once, in order, and not looked at
#   again before its slot; at its slot only the pace can hold it back once more (a late start).
# - concurrency: at most N places (`:running`, scored by lease expiry: a dead worker's places free
#   themselves); a job finding none waits a lease at most, in the task's `:waiting` set, and is woken
#   as soon as a place is given back (arq_jobs._limits.worker.RELEASE_SCRIPT).
CLAIM_SCRIPT = f"""
local want = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local now = tonumber(ARGV[1])
local prefix = ARGV[5]
local limits = {{}}
for i = 0, tonumber(ARGV[6] or '0') - 1 do
  limits[ARGV[7 + 3 * i]] = {{tonumber(ARGV[8 + 3 * i]), tonumber(ARGV[9 + 3 * i])}}
end
local limited = ARGV[6] ~= nil and ARGV[6] ~= '0'
local function park(id, record, until_ms, reason)
  redis.call('ZADD', KEYS[1], until_ms, id)
  redis.call('HSET', record, '{THROTTLE}', reason, '{THROTTLED_UNTIL}', until_ms)
end
-- true when the job may start now (it then takes the pace and a place), false when it was parked
local function admit(id, score)
  local record = prefix .. ':job:' .. id
  local info = redis.call('HMGET', record, '{TASK}', '{THROTTLE}')
  local task = info[1]
  local limit = task and limits[task]
  if not limit then return true end
  local base = prefix .. ':limit:' .. task
  if limit[2] > 0 then
    redis.call('ZREMRANGEBYSCORE', base .. ':running', '-inf', now)
    if redis.call('ZCARD', base .. ':running') >= limit[2] then
      redis.call('ZADD', base .. ':waiting', 'NX', score, KEYS[1] .. '|' .. id)
      park(id, record, now + tonumber(ARGV[2]), 'concurrency')
      return false
    end
  end
  if limit[1] > 0 then
    local interval = limit[1]
    local tat = tonumber(redis.call('GET', base .. ':rate') or '0')
    if info[2] then  -- held back before: its turn came, only the pace can hold it once more
      if tat > now then
        park(id, record, math.ceil(tat), 'rate')
        return false
      end
    else  -- first look: behind every job holding a slot already
      local slot = math.max(tat, tonumber(redis.call('GET', base .. ':slots') or '0') + interval)
      if slot > now then
        redis.call('SET', base .. ':slots', slot, 'PX', math.ceil(slot - now + interval) + 1000)
        park(id, record, math.ceil(slot), 'rate')
        return false
      end
    end
    redis.call('SET', base .. ':rate', now + interval, 'PX', math.ceil(interval) + 1000)
  end
  if limit[2] > 0 then
    redis.call('ZADD', base .. ':running', now + tonumber(ARGV[2]), id)
    redis.call('ZREM', base .. ':waiting', KEYS[1] .. '|' .. id)
  end
  return true
end
local claimed = {{0}}
local offset = 0
local looked = 0
while looked < scan do
  local page = math.min(200, scan - looked)
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, page)
  local parked = 0
  for i = 1, #due, 2 do
    local lease = '{in_progress_key_prefix}' .. due[i]
    if redis.call('EXISTS', lease) == 0 then
      if (#claimed - 1) / 2 >= want then
        claimed[1] = 1
        return claimed
      end
      if not limited or admit(due[i], due[i + 1]) then
        redis.call('PSETEX', lease, ARGV[2], '1')
        claimed[#claimed + 1] = due[i]
        claimed[#claimed + 1] = due[i + 1]
      else
        parked = parked + 1
      end
    end
  end
  if #due < page * 2 then return claimed end
  looked = looked + page
  offset = offset + page - parked  -- parked jobs left the due range
end
claimed[1] = 1
return claimed
"""


def poll_iteration(
    worker: Worker, wakeup: Wakeup, limits: Sequence[str | int | float] = ()
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A replacement for `worker._poll_iteration` (not for burst mode, which we do not use);
    `limits`: the claim script's arguments for limited tasks (WorkerLimits.claim_args)."""

    async def iteration() -> None:
        free = worker.max_jobs - worker.job_counter
        if free <= 0:  # jobs may be due (a wake-up brought us here): look again when a slot frees
            wakeup.claimed(True)
        elif worker.allow_pick_jobs:
            lease_ms = round(worker.in_progress_timeout_s * 1000)
            scan = worker.queue_read_limit + worker.max_jobs
            answer = await run_script(
                worker.pool,
                CLAIM_SCRIPT,
                [worker.queue_name],
                [timestamp_ms(), lease_ms, free, scan, *limits],
            )
            wakeup.claimed(answer[0] == 1)
            for index in range(1, len(answer), 2):
                await start(worker, wakeup, answer[index].decode(), int(float(answer[index + 1])))
        for job_id, task in list(worker.tasks.items()):
            if task.done():
                del worker.tasks[job_id]
                # ARQ re-raises an error of run_job itself here, which ends the worker and every job
                # it runs; one job's bookkeeping error is logged instead (its lease runs out, ARQ's
                # max tries dead-letters it if it keeps failing)
                error = None if task.cancelled() else task.exception()
                if error is not None:
                    log.error("run_job of job %s failed", job_id, exc_info=error)
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
