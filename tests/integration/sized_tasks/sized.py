"""`sized_echo`: its enqueue route reads at most 256 bytes (`max_input_bytes`)."""

from __future__ import annotations

from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task


class SizedInput(TaskInput):
    text: str


@task(max_input_bytes=256)
async def sized_echo(ctx: JobContext, data: SizedInput) -> str:
    """Answer its text."""
    return data.text
