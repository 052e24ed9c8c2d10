"""A task on a once-a-second schedule, `every_second`: disabled for every integration test
(`JOBS_DISABLED_SCHEDULES=every_second` in conftest) except those of test_schedules, which enable it."""

from __future__ import annotations

from arq_jobs._schedules.cron import Cron
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, task


class TickInput(TaskInput):
    note: str


def runs_key(prefix: str) -> str:
    """The list of job ids `record_tick` ran, in the order it ran them."""
    return f"{prefix}:test:every_second:runs"


@task(schedule=Cron("* * * * * *", name="every_second", input={"note": "every second"}))
async def record_tick(ctx: JobContext, data: TickInput) -> str:
    """Note that this tick's job ran (once per run: a tick run twice shows twice)."""
    await ctx.redis.rpush(runs_key(ctx.resources.settings.key_prefix), ctx.job_id)
    return data.note
