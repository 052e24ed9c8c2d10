"""Tasks for the edge-case tests of issue 7 (tests/integration/test_issue7_edges.py): a task with at
most one attempt running at once and one limited to 10 starts a second, both noting each start and
end in Redis; a step that fails its first attempts; a task whose result JSON cannot carry."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Literal

from pydantic import Field

from arq_jobs._errors import TransientError
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task
from arq_jobs._tasks.retry import RetryPolicy
from tests.integration.tasks.workflow_steps import Value


class Probe(TaskInput):
    tag: str = ""
    n: int = 0
    seconds: float = Field(default=0, ge=0, le=60)
    first_attempt_seconds: float | None = Field(default=None, ge=0, le=60)
    fail_attempts: int = Field(default=0, ge=0, description="Attempts that fail, transiently.")
    retry_after_s: float = Field(default=0.2, ge=0, le=60)


def events_key(prefix: str, tag: str) -> str:
    """The list of `{"event", "n", "job_id", "attempt", "worker", "at"}` a probe's runs append to."""
    return f"{prefix}:edge:{tag}"


async def note(ctx: JobContext, data: Probe, event: str) -> None:
    entry = {
        "event": event,
        "n": data.n,
        "job_id": ctx.job_id,
        "attempt": ctx.attempt,
        "worker": ctx.resources.worker_id,
        "at": time.time(),
    }
    await ctx.redis.rpush(events_key(ctx.keys.prefix, data.tag), json.dumps(entry))


async def probe(ctx: JobContext, data: Probe) -> int:
    """Note the start, sleep, then fail transiently on the first `fail_attempts` attempts or note the
    end and return `n`."""
    await note(ctx, data, "start")
    first = data.first_attempt_seconds
    await asyncio.sleep(first if first is not None and ctx.attempt == 1 else data.seconds)
    if ctx.attempt <= data.fail_attempts:
        await note(ctx, data, "fail")
        raise TransientError(f"attempt {ctx.attempt} fails", retry_after_s=data.retry_after_s)
    await note(ctx, data, "end")
    return data.n


@task(queue="lifecycle", max_concurrency=1, timeout_s=120, retry=RetryPolicy(max_attempts=3))
async def edge_capped(ctx: JobContext, data: Probe) -> int:
    """A probe at most one of which runs at once, on the `lifecycle` queue."""
    return await probe(ctx, data)


@task(rate_limit="10/s", max_attempts=1)
async def edge_paced(ctx: JobContext, data: Probe) -> int:
    """A probe started at most ten times a second."""
    return await probe(ctx, data)


@task(retry=RetryPolicy(max_attempts=2, base_s=0.1, cap_s=0.1))
async def edge_flaky(ctx: JobContext, data: Probe) -> Value:
    """A workflow step that fails its first `fail_attempts` attempts: `{"n": n}` after that."""
    return Value(n=await probe(ctx, data))


class Unjsonable(TaskInput):
    kind: Literal["object", "bigint"]


@task(queue="lifecycle", retry=RetryPolicy(max_attempts=2, base_s=0.1, cap_s=0.1))
async def edge_unjsonable(ctx: JobContext, data: Unjsonable) -> Any:
    """A result JSON cannot carry: an object of no JSON type, or an integer beyond 64 bits."""
    return object() if data.kind == "object" else 2**70
