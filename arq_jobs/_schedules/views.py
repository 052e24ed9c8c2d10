"""Periodic jobs: firing one tick of a schedule exactly once, its last run, and what `GET /schedules`
shows.

A tick is a job with the id `cron-<schedule>-<tick in epoch ms>-<deployment>` (a hash of the key
prefix: ARQ's job keys are shared by every deployment on the Redis), stored only if no job has that id:
however many workers fire the same tick, one job is made, and only the process that made it records
the schedule's last run (`Keys.schedule(name)`: the tick and the job id, never moved back to an older
tick). The workers' loop that decides when to fire is `arq_jobs._schedules.scheduler`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from arq_jobs._client import Enqueued, JobClient
from arq_jobs._clock import ms_to_datetime
from arq_jobs._config import Settings
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._logs import get_logger
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import load_script
from arq_jobs._tasks.registry import Schedule

log = get_logger(__name__)

LAST_TICK = "tick"
LAST_JOB = "job_id"

RECORD_SCRIPT = load_script("record-tick-1.lua")


class LastRun(BaseModel):
    """The job a schedule's latest fired tick made."""

    job_id: str
    scheduled_for: datetime = Field(description="The tick that made the job.")
    status: JobState | None = Field(description="The job's state now; null once its record has expired.")


class ScheduleView(BaseModel):
    """One schedule as `GET /schedules` lists it."""

    name: str
    task: str
    cron: str = Field(description="The cron expression (6 fields: seconds first; or 5; or an @alias).")
    timezone: str
    queue: str
    enabled: bool = Field(description="False when JOBS_DISABLED_SCHEDULES names it.")
    next_run_at: datetime | None = Field(description="The next tick (UTC); null while disabled.")
    last_run: LastRun | None = Field(description="The latest tick fired; null before the first.")


@dataclass(frozen=True, slots=True)
class Fired:
    """A tick as the schedule's store keeps it."""

    tick_ms: int
    job_id: str


def tick_job_id(schedule: str, tick_ms: int, key_prefix: str) -> str:
    """The id of the one job a tick (epoch ms) makes: the same in every process of the deployment
    (`key_prefix`) that fires it, another in other deployments sharing the Redis (ARQ's job keys are
    not under our prefix)."""
    deployment = hashlib.blake2b(key_prefix.encode(), digest_size=4).hexdigest()
    return f"cron-{schedule}-{tick_ms}-{deployment}"


def is_enabled(schedule: Schedule, settings: Settings) -> bool:
    return schedule.name not in settings.disabled_schedules


class ScheduleStore:
    """Each schedule's last fired tick, under `Keys.schedule(name)` (kept until deleted: one small
    hash per schedule)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def record(self, schedule: str, fired: Fired) -> bool:
        """Remember `fired` as the schedule's last run unless a later tick is remembered already."""
        answer = await run_script(
            self.redis,
            RECORD_SCRIPT,
            RECORD_SCRIPT.keys(schedule=self.keys.schedule(schedule)),
            RECORD_SCRIPT.args(tick=fired.tick_ms, job_id=fired.job_id),
        )
        return bool(answer)

    async def last_runs(self, schedules: Sequence[str]) -> list[Fired | None]:
        """Each schedule's last fired tick (None before its first), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in schedules:
                pipe.hmget(self.keys.schedule(name), [LAST_TICK, LAST_JOB])
            replies = await pipe.execute()
        return [
            Fired(int(tick), job_id.decode()) if tick is not None and job_id is not None else None
            for tick, job_id in replies
        ]


async def fire(client: JobClient, schedule: Schedule, tick: datetime) -> Enqueued:
    """Enqueue the job of one tick, unless a process did already (then its job comes back
    `replayed`); the process that made it records the last run and logs `schedule.fired`."""
    task = schedule.task
    tick_ms = round(tick.timestamp() * 1000)
    job_id = tick_job_id(schedule.name, tick_ms, client.settings.key_prefix)
    data = task.parse_input(dict(schedule.cron.input))
    accepted = await client.enqueue(task, data, job_id=job_id, schedule=schedule.name)
    if not accepted.replayed:
        await ScheduleStore(client.redis, client.keys).record(schedule.name, Fired(tick_ms, job_id))
        log.info(
            "schedule.fired",
            schedule=schedule.name,
            task=task.name,
            job_id=job_id,
            tick=tick.isoformat(),
        )
    return accepted


async def schedule_views(client: JobClient, now: datetime) -> list[ScheduleView]:
    """Every schedule of the client's registry with its next tick after `now` and its last run's
    state (two round trips: the last runs, then their jobs' statuses)."""
    schedules = client.registry.schedules
    last = await ScheduleStore(client.redis, client.keys).last_runs([s.name for s in schedules])
    fired = [run.job_id for run in last if run is not None]
    statuses = dict(zip(fired, await client.statuses(fired) if fired else [], strict=True))
    views = []
    for schedule, run in zip(schedules, last, strict=True):
        enabled = is_enabled(schedule, client.settings)
        last_run = None
        if run is not None:
            found = statuses[run.job_id]
            tick = ms_to_datetime(run.tick_ms)
            assert tick is not None
            last_run = LastRun(
                job_id=run.job_id, scheduled_for=tick, status=None if found is None else found.status
            )
        views.append(
            ScheduleView(
                name=schedule.name,
                task=schedule.task.name,
                cron=schedule.cron.expression,
                timezone=schedule.cron.timezone,
                queue=schedule.task.queue_for(client.settings),
                enabled=enabled,
                next_run_at=schedule.cron.next_after(now) if enabled else None,
                last_run=last_run,
            )
        )
    return views
