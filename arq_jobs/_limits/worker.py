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

from arq_jobs._keys import Keys
from arq_jobs._limits.spec import TaskLimits
from arq_jobs._scripts.script import Arg, load_script
from arq_jobs._tasks.registry import TaskRegistry

RELEASE_SCRIPT = load_script("release-place-2.lua")


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
        """The claim script's `limits` (claim-1.lua): none when no task has limits."""
        if not self.by_task:
            return []
        args: list[str | int | float] = [self.keys.record("")]
        for name, limits in self.by_task.items():
            interval = limits.rate.interval_ms if limits.rate else 0
            args += [name, interval, limits.max_concurrency or 0]
            args += [self.keys.limit(name, kind) for kind in ("rate", "slots", "running", "waiting")]
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

    def release_call(self, job_id: str, now_ms: int) -> tuple[list[str], list[Arg]] | None:
        """RELEASE_SCRIPT's keys and arguments when `job_id` held a place (forgetting it), else None."""
        task = self.held.pop(job_id, None)
        if task is None:
            return None
        limits = self.by_task[task]
        keys = RELEASE_SCRIPT.keys(
            running=self.keys.limit(task, "running"), waiting=self.keys.limit(task, "waiting")
        )
        args = RELEASE_SCRIPT.args(
            job_id=job_id,
            now=now_ms,
            max_running=limits.max_concurrency or 0,
            record_prefix=self.keys.record(""),
            wake_suffix=Keys.wake_channel(""),
        )
        return keys, args
