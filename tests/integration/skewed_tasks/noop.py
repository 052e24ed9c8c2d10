"""`noop` as an older deployment had it: its input had a required `label` and no `value`."""

from __future__ import annotations

from arq_jobs import JobContext, TaskInput, task


class NoopInput(TaskInput):
    label: str


@task(timeout_s=10)
async def noop(ctx: JobContext, data: NoopInput) -> NoopInput:
    """Return the input unchanged."""
    return data
