"""A task that does nothing but return its input: for smoke tests and benchmarks."""

from __future__ import annotations

from pydantic import JsonValue

from arq_jobs import JobContext, TaskInput, task


class NoopInput(TaskInput):
    value: JsonValue = None


@task(timeout_s=10)
async def noop(ctx: JobContext, data: NoopInput) -> NoopInput:
    """Return the input unchanged."""
    return data
