"""Whether this worker process reaches Redis, as every one of its loops finds out.

Each loop (claims, lease renewal, wake-ups, the scheduler, attempt starts and ends) reports a Redis
error with `failed(error)` and an answer with `recovered()`, and after an error waits `backoff()`:
capped exponential (0.1 s doubling to 5 s, jittered), measured from the start of the outage so that
every loop backs off alike, and ended early when any loop finds Redis back. The outage is logged
twice, whatever the number of retries: one warning when it starts, one line when it ends.

A write that records the end of an attempt must not be lost to a short outage: `hold` retries it
until Redis answers, for at least `hold_s`, then gives it up (at-least-once: the job runs again once
its lease runs out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis import exceptions as redis_errors

from arq_jobs._redis_errors import describe_redis_error

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0

# what a loop catches and reports: any redis-py error and a socket's own (builtin TimeoutError is an
# OSError); no loop ends on one
REDIS_ERRORS: tuple[type[BaseException], ...] = (redis_errors.RedisError, OSError)
# what `hold` waits out: Redis away or not taking writes now (connection refused or reset, timeouts,
# LOADING is a ConnectionError, READONLY, OOM, a transaction those aborted), not a bad command
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.MasterDownError,
    redis_errors.TryAgainError,
    redis_errors.ExecAbortError,
    OSError,
)

T = TypeVar("T")


class OutageGaveUp(Exception):
    """A write held through a Redis outage for `JOBS_OUTAGE_HOLD_S` was given up (its cause: the last
    Redis error). Not a Redis error, so that nothing takes it for a task's own failure."""


class RedisHealth:
    """One per worker process: `up`, and `since` (monotonic time) the outage began when not."""

    def __init__(
        self,
        *,
        hold_s: float = 60.0,
        first_s: float = FIRST_BACKOFF_S,
        max_s: float = MAX_BACKOFF_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hold_s = hold_s
        self.first_s = first_s
        self.max_s = max_s
        self.clock = clock
        self.up = True
        self.since: float | None = None
        self.error: BaseException | None = None
        self._back: asyncio.Event | None = None

    @property
    def outage_s(self) -> float:
        """How long the current outage has lasted (0 when Redis is up)."""
        return 0.0 if self.since is None else self.clock() - self.since

    def failed(self, error: BaseException) -> None:
        """A loop could not reach Redis."""
        if self.up:
            self.up = False
            self.since = self.clock()
            self.error = error
            log.warning(
                "Redis unavailable: %s; taking no new jobs, retrying until it answers",
                describe_redis_error(error),
            )

    def recovered(self, *, wrote: bool = True) -> None:
        """A loop got an answer from Redis (`wrote`: to a command that wrote). An outage in which Redis
        refused writes (ReadOnlyError: a demoted primary, a replica) ends only with a write: reads
        still answer then, and taking them for the end would flap between up and down."""
        if self.up or (not wrote and isinstance(self.error, redis_errors.ReadOnlyError)):
            return
        last = "" if self.error is None else f" ({describe_redis_error(self.error)})"
        log.info("Redis available again after %.1f s of outage%s", self.outage_s, last)
        self.up = True
        self.since = None
        self.error = None
        if self._back is not None:
            self._back.set()
            self._back = None

    def delay_s(self) -> float:
        """The next wait: the outage's length so far (so waits double), between first_s and max_s,
        less up to half of it at random (loops and workers do not retry in step)."""
        delay = min(self.max_s, max(self.first_s, self.outage_s))
        return delay * random.uniform(0.5, 1.0)

    async def backoff(self) -> None:
        """Wait before the next try: `delay_s()`, or until a loop finds Redis back."""
        if self.up:
            return
        if self._back is None:
            self._back = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._back.wait(), self.delay_s())

    async def hold(self, operation: Callable[[], Awaitable[T]]) -> T:
        """`operation()`'s answer, retried through a Redis outage for at least `hold_s`; past that
        OutageGaveUp (from the last error)."""
        deadline = self.clock() + self.hold_s
        while True:
            try:
                answer = await operation()
            except OUTAGE_ERRORS as error:
                self.failed(error)
                if self.clock() >= deadline:
                    raise OutageGaveUp(
                        f"Redis did not answer for {self.hold_s:.0f} s ({describe_redis_error(error)})"
                    ) from error
                await self.backoff()
            else:
                self.recovered()
                return answer
