"""A task that does nothing but return its input: for smoke tests and benchmarks."""

from __future__ import annotations

from pydantic import BaseModel, JsonValue

from jobcore.context import JobContext
from jobcore.registry import task


class NoopInput(BaseModel):
    value: JsonValue = None


@task(timeout_s=10)
async def noop(ctx: JobContext, data: NoopInput) -> NoopInput:
    """Return the input unchanged."""
    return data
