"""Small arithmetic tasks to chain, group and chord in workflow tests; one that always fails, one whose
input fits no other task's result, and a callback that counts its runs."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, Field, RootModel

from arq_jobs._errors import TaskError
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task


class Pair(TaskInput):
    a: int
    b: int


class Number(TaskInput):
    n: int
    delay_s: float = Field(default=0, ge=0, le=60)


class Value(BaseModel):
    n: int


class Values(RootModel[list[Value]]):
    """A callback's input: the list of a group's results."""


class Total(BaseModel):
    count: int
    total: int


class Name(TaskInput):
    name: str


@task(max_attempts=1)
async def wf_add(ctx: JobContext, data: Pair) -> Value:
    """a + b."""
    return Value(n=data.a + data.b)


@task(max_attempts=1)
async def wf_double(ctx: JobContext, data: Number) -> Value:
    """2n, after `delay_s`."""
    await asyncio.sleep(data.delay_s)
    return Value(n=2 * data.n)


@task(max_attempts=1)
async def wf_square(ctx: JobContext, data: Number) -> Value:
    """n², after `delay_s`."""
    await asyncio.sleep(data.delay_s)
    return Value(n=data.n * data.n)


@task(max_attempts=1)
async def wf_total(ctx: JobContext, data: Values) -> Total:
    """The count and sum of a group's results; counts its own runs at `<prefix>:wf-calls:<job id>`."""
    await ctx.redis.incr(f"{ctx.keys.prefix}:wf-calls:{ctx.job_id}")
    return Total(count=len(data.root), total=sum(value.n for value in data.root))


@task(max_attempts=1)
async def wf_fail_always(ctx: JobContext, data: Number) -> Value:
    """Fail, with no attempt left."""
    raise TaskError(f"cannot take {data.n}")


@task(max_attempts=1)
async def wf_greet(ctx: JobContext, data: Name) -> str:
    """A greeting: its input fits no other workflow task's result."""
    return f"hello {data.name}"
