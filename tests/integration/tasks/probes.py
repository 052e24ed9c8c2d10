"""Tasks that hold a worker for a while, ignore or heed time limits: for delivery-guarantee tests."""

from __future__ import annotations

import asyncio
import time

from pydantic import BaseModel, Field

from arq_jobs._errors import PermanentError, TransientError
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task
from arq_jobs._tasks.retry import RetryPolicy


class HoldInput(TaskInput):
    seconds: float = Field(ge=0, le=3600)


class Held(BaseModel):
    seconds: float
    attempt: int
    worker: str


@task(queue="lifecycle", timeout_s=3600)
async def hold(ctx: JobContext, data: HoldInput) -> Held:
    """Sleep on the `lifecycle` queue (served only by workers a test starts), 1-hour time limit."""
    await asyncio.sleep(data.seconds)
    return Held(seconds=data.seconds, attempt=ctx.attempt, worker=ctx.resources.worker_id)


@task(timeout_s=60)
async def nap(ctx: JobContext, data: HoldInput) -> Held:
    """Sleep on the default queue."""
    await asyncio.sleep(data.seconds)
    return Held(seconds=data.seconds, attempt=ctx.attempt, worker=ctx.resources.worker_id)


class OverrunInput(TaskInput):
    seconds: float = Field(ge=0, le=60)
    heed_soft_limit: bool


class Overrun(BaseModel):
    stopped_early: bool
    elapsed_s: float


@task(timeout_s=1.0, soft_timeout_s=0.4, retry=RetryPolicy(max_attempts=2, base_s=0.2, cap_s=0.2))
async def overrun(ctx: JobContext, data: OverrunInput) -> Overrun:
    """Run `seconds`; at the soft limit say so in progress, then stop early or carry on into the
    hard limit."""
    started = time.monotonic()
    while time.monotonic() - started < data.seconds:
        await asyncio.sleep(0.02)
        if ctx.soft_limit_reached:
            await ctx.progress(1, 2, f"soft limit reached on attempt {ctx.attempt}")
            if data.heed_soft_limit:
                return Overrun(stopped_early=True, elapsed_s=round(time.monotonic() - started, 3))
            await asyncio.sleep(data.seconds)
    return Overrun(stopped_early=False, elapsed_s=round(time.monotonic() - started, 3))


class FailInput(TaskInput):
    permanent: bool
    retry_after_s: float = Field(default=120, ge=0, le=3600)


@task(retry=RetryPolicy(max_attempts=2))
async def fail(ctx: JobContext, data: FailInput) -> None:
    """Fail for good, or transiently with a fixed wait before the next attempt."""
    if data.permanent:
        raise PermanentError("refused for good")
    raise TransientError("not now", retry_after_s=data.retry_after_s)
