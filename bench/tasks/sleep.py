"""A task that only waits: the 10 ms job of the benchmarks' sleep and status-polling workloads."""

from __future__ import annotations

import asyncio

from pydantic import Field

from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task


class SleepInput(TaskInput):
    seconds: float = Field(default=0.01, ge=0, le=60)


@task(timeout_s=70)
async def sleep(ctx: JobContext, data: SleepInput) -> None:
    """Sleep `seconds` (10 ms by default)."""
    await asyncio.sleep(data.seconds)
