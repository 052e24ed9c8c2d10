"""The worker's side of per-task limits (arq_jobs._limits.spec): what the claim script is told, which
running attempts hold one of their task's concurrency places, and giving a place back.

The claim script (`arq_jobs._worker.claims`) admits a due job only within its task's limits; a job held back
for concurrency waits in its task's waiting set. When an attempt that held a place ends, however it
ends, `RELEASE_SCRIPT` frees the place and moves the longest-waiting job of that task back to "due
now" with a wake-up for its queue's workers: no worker polls for it. A worker that dies stops
renewing its places (their scores are lease expiry times), so they free themselves within `lease_s`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio.client import Pipeline

from arq_jobs._jobs.records import THROTTLED_UNTIL
from arq_jobs._keys import Keys
from arq_jobs._limits.spec import TaskLimits
from arq_jobs._tasks.registry import TaskRegistry

# KEYS: the task's running set, its waiting set. ARGV: job id, now (ms), max running, key prefix.
# Frees the job's place (and places whose lease ran out), then makes as many waiting jobs due now as
# there are free places (skipping entries of jobs no longer in their queue: cancelled, or claimed).
RELEASE_SCRIPT = f"""
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local woken = 0
while free > 0 do
  local first = redis.call('ZPOPMIN', KEYS[2])
  if #first == 0 then break end
  local sep = string.find(first[1], '|', 1, true)
  local queue, id = string.sub(first[1], 1, sep - 1), string.sub(first[1], sep + 1)
  if redis.call('ZADD', queue, 'XX', 'CH', ARGV[2], id) == 1 then
    redis.call('HSET', ARGV[4] .. ':job:' .. id, '{THROTTLED_UNTIL}', ARGV[2])
    redis.call('PUBLISH', queue .. ':wake', '')
    free = free - 1
    woken = woken + 1
  end
end
return woken
"""


@dataclass
class WorkerLimits:
    """The limited tasks this worker runs, and the concurrency places its attempts hold."""

    keys: Keys
    by_task: dict[str, TaskLimits] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)  # job id -> task, while its attempt runs

    @classmethod
    def none(cls) -> WorkerLimits:
        return cls(Keys(""))

    @classmethod
    def of(cls, registry: TaskRegistry, keys: Keys) -> WorkerLimits:
        return cls(keys, {task.name: task.limits for task in registry if task.limits})

    def claim_args(self) -> list[str | int | float]:
        """CLAIM_SCRIPT's arguments after the first four: none when no task has limits."""
        if not self.by_task:
            return []
        args: list[str | int | float] = [self.keys.prefix, len(self.by_task)]
        for name, limits in self.by_task.items():
            interval = limits.rate.interval_ms if limits.rate else 0
            args += [name, interval, limits.max_concurrency or 0]
        return args

    def hold(self, job_id: str, task: str) -> None:
        """Note that `job_id`'s attempt holds a place of `task` (the claim script gave it one)."""
        limits = self.by_task.get(task)
        if limits is not None and limits.max_concurrency:
            self.held[job_id] = task

    def renew(self, pipe: Pipeline, now_ms: int, lease_ms: int) -> None:
        """Keep the places of running attempts for another lease (with the beat's lease renewal)."""
        for job_id, task in self.held.items():
            pipe.zadd(self.keys.limit(task, "running"), {job_id: now_ms + lease_ms}, xx=True)

    def release_call(self, job_id: str, now_ms: int) -> tuple[list[str], list[str | int]] | None:
        """RELEASE_SCRIPT's keys and arguments when `job_id` held a place (forgetting it), else None."""
        task = self.held.pop(job_id, None)
        if task is None:
            return None
        limits = self.by_task[task]
        keys = [self.keys.limit(task, "running"), self.keys.limit(task, "waiting")]
        return keys, [job_id, now_ms, limits.max_concurrency or 0, self.keys.prefix]
