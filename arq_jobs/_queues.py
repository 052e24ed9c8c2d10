"""Queue statistics: counts by state, age of the oldest pending job, live workers — a handful of
O(log n) sorted-set reads per queue (one script call), never a scan of jobs."""

from __future__ import annotations

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from arq_jobs._jobs.transitions import Phase
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script

# KEYS: queued, running, succeeded, failed, cancelled phase indexes of the queue, its retry waits,
# its dead letters; ARGV: now (ms). Answers the counts, then the run time of the oldest pending job
# (-1 when none): the earliest due queued job that is not waiting out a retry backoff.
QUEUE_STATS_SCRIPT = """
local now = tonumber(ARGV[1])
local queued = redis.call('ZCARD', KEYS[1])
local scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local retrying = redis.call('ZCOUNT', KEYS[6], '(' .. now, '+inf')
local oldest = -1
local offset = 0
while oldest == -1 and offset < 1000 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, 100)
  if #due == 0 then break end
  for i = 1, #due, 2 do
    local wait = redis.call('ZSCORE', KEYS[6], due[i])
    if not wait or tonumber(wait) <= now then
      oldest = tonumber(due[i + 1])
      break
    end
  end
  offset = offset + 100
end
return {queued - scheduled - retrying, scheduled, retrying, redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]),
  redis.call('ZCARD', KEYS[7]), oldest}
"""


class QueueStats(BaseModel):
    """One queue now. `succeeded`, `failed` and `cancelled` count the jobs still kept (result TTL)."""

    name: str
    pending: int = Field(description="Due now, waiting for a worker.")
    scheduled: int = Field(description="Waiting for their run time.")
    running: int
    retrying: int = Field(description="Waiting out a backoff before their next attempt.")
    succeeded: int
    failed: int
    cancelled: int
    dead_lettered: int = Field(
        description="Dead letters of this queue's jobs (kept for the dead-letter TTL)."
    )
    oldest_pending_age_s: float | None = Field(description="How long the oldest pending job has been due.")
    workers: int = Field(description="Live workers serving this queue.")


async def queue_stats(redis: Redis, keys: Keys, queue: str, now_ms: int, workers: int) -> QueueStats:
    """The counts of one queue, read atomically; `workers` is its number of live workers."""
    phase = [keys.index("phase", f"{p.value}:queue:{queue}") for p in Phase]
    answer = await run_script(
        redis,
        QUEUE_STATS_SCRIPT,
        [*phase, keys.retry_waits(queue), keys.dead_letters_of_queue(queue)],
        [now_ms],
    )
    pending, scheduled, retrying, running, succeeded, failed, cancelled, dead, oldest = (
        int(v) for v in answer
    )
    return QueueStats(
        name=queue,
        pending=max(0, pending),
        scheduled=scheduled,
        running=running,
        retrying=retrying,
        succeeded=succeeded,
        failed=failed,
        cancelled=cancelled,
        dead_lettered=dead,
        oldest_pending_age_s=None if oldest < 0 else round(max(0, now_ms - oldest) / 1000, 3),
        workers=workers,
    )
