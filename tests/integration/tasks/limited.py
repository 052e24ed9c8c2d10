"""Tasks with limits shared by every worker: a rate-limited webhook and a task with at most two
attempts running at once, each telling a local HTTP target when it runs."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field

from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task


class Ping(TaskInput):
    url: str
    n: int = Field(ge=0)


class Pinged(BaseModel):
    n: int
    worker: str


@task(rate_limit="10/s", max_attempts=1)
async def paced_ping(ctx: JobContext, data: Ping) -> Pinged:
    """POST `n` to `url`, at most 10 jobs a second across all workers."""
    response = await ctx.http.post(data.url, json={"n": data.n, "job_id": ctx.job_id})
    response.raise_for_status()
    return Pinged(n=data.n, worker=ctx.resources.worker_id)


class Span(TaskInput):
    url: str
    n: int = Field(ge=0)
    seconds: float = Field(ge=0, le=10)


@task(max_concurrency=2, max_attempts=1)
async def capped_span(ctx: JobContext, data: Span) -> int:
    """Tell `url/start`, run `seconds`, tell `url/end`: at most two at once across all workers."""
    (await ctx.http.post(f"{data.url}/start", json={"n": data.n})).raise_for_status()
    await asyncio.sleep(data.seconds)
    (await ctx.http.post(f"{data.url}/end", json={"n": data.n})).raise_for_status()
    return data.n
