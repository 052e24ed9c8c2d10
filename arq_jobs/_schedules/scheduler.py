"""The loop every worker process runs to fire the tasks' schedules (arq_jobs._schedules.views makes each tick
one job, however many processes fire it).

It sleeps until the earliest next tick, computed from the clock when it starts and after each tick,
never from what Redis remembers: a tick missed while no worker ran is not made up for. Woken late (a
blocked event loop, the clock jumping ahead) it fires only each schedule's latest due tick, never the
burst it slept through; the clock moving back makes it plan again from the clock. It re-reads the
clock at least every MAX_SLEEP_S, so a clock change is noticed within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from arq_jobs._client import JobClient
from arq_jobs._logs import get_logger
from arq_jobs._redis_errors import describe_redis_error
from arq_jobs._schedules.views import fire, is_enabled
from arq_jobs._tasks.registry import Schedule
from arq_jobs._worker.outage import REDIS_ERRORS, RedisHealth

log = get_logger(__name__)

MAX_SLEEP_S = 1.0

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Fires `schedules` through `client` at their ticks, until stopped."""

    def __init__(
        self,
        client: JobClient,
        schedules: Sequence[Schedule],
        clock: Clock = utc_now,
        health: RedisHealth | None = None,
    ) -> None:
        self.client = client
        self.schedules = list(schedules)
        self.clock = clock
        self.health = health  # the worker's: a Redis outage is logged there, once
        self.due: dict[str, datetime] = {}
        self._seen: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_worker(cls, client: JobClient, health: RedisHealth | None = None) -> Scheduler | None:
        """The scheduler of a worker process (reporting Redis errors to its `health`): its
        registry's enabled schedules; None when the settings turn schedules off in this process or
        none is enabled."""
        settings = client.settings
        if not settings.schedules_enabled:
            return None
        enabled = [s for s in client.registry.schedules if is_enabled(s, settings)]
        return cls(client, enabled, health=health) if enabled else None

    def plan(self, now: datetime) -> None:
        """Each schedule's next tick after `now`."""
        self.due = {s.name: s.cron.next_after(now) for s in self.schedules}
        self._seen = now

    def sleep_s(self, now: datetime) -> float:
        """How long to sleep before the earliest due tick (at most MAX_SLEEP_S)."""
        earliest = min(self.due.values())
        return min(MAX_SLEEP_S, max(0.0, (earliest - now).total_seconds()))

    async def fire_due(self, now: datetime) -> list[tuple[Schedule, datetime]]:
        """Fire, concurrently, the latest due tick of each schedule whose next tick is not after
        `now`; answer what was fired (an error is logged, not raised: the next tick is planned)."""
        if self._seen is None or now < self._seen:  # first call, or the clock went back
            self.plan(now)
            return []
        self._seen = now
        due = []
        for schedule in self.schedules:
            planned = self.due[schedule.name]
            if planned > now:
                continue
            tick = schedule.cron.latest_at_or_before(now, not_before=planned) or planned
            if tick != planned:
                log.warning(
                    "schedule.ticks_skipped",
                    schedule=schedule.name,
                    first_skipped=planned.isoformat(),
                    fired=tick.isoformat(),
                )
            self.due[schedule.name] = schedule.cron.next_after(tick)
            due.append((schedule, tick))
        await asyncio.gather(*(self._fire(schedule, tick) for schedule, tick in due))
        return due

    async def _fire(self, schedule: Schedule, tick: datetime) -> None:
        try:
            await fire(self.client, schedule, tick)
        except REDIS_ERRORS as error:  # Redis down: this tick is lost here (another worker may fire it)
            if self.health is not None:
                self.health.failed(error)
            else:
                log.warning(
                    "schedule.fire_failed",
                    schedule=schedule.name,
                    tick=tick.isoformat(),
                    error=describe_redis_error(error),
                )
        except Exception:
            log.exception("schedule.fire_failed", schedule=schedule.name, tick=tick.isoformat())
        else:
            if self.health is not None:
                self.health.recovered()

    async def run(self) -> None:
        self.plan(self.clock())
        while True:
            try:
                await asyncio.sleep(self.sleep_s(self.clock()))
                await self.fire_due(self.clock())
            except Exception:  # never let the loop die: the schedules would stop for good
                log.exception("scheduler.failed")
                await asyncio.sleep(MAX_SLEEP_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="jobs-scheduler")
        log.info("scheduler.started", schedules=[s.name for s in self.schedules])

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
