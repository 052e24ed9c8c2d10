"""Queue statistics: counts by state, age of the oldest pending job, live workers — a handful of
O(log n) sorted-set reads per queue (one script call), never a scan of jobs."""

from __future__ import annotations

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from arq_jobs._jobs.transitions import Phase
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script

QUEUE_STATS_SCRIPT = load_script("queue-stats-7.lua")


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
    phase = {p.value: keys.index("phase", f"{p.value}:queue:{queue}") for p in Phase}
    script_keys = QUEUE_STATS_SCRIPT.keys(
        **phase, retry_waits=keys.retry_waits(queue), dead_letters=keys.dead_letters_of_queue(queue)
    )
    answer = await run_script(redis, QUEUE_STATS_SCRIPT, script_keys, QUEUE_STATS_SCRIPT.args(now=now_ms))
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
