"""Waking ARQ's poll loop early, so a job starts in milliseconds instead of up to `poll_delay` later.

ARQ 0.28 polls its queue every `poll_delay`; a job enqueued just after a poll waits for the next one,
and a worker whose slots free up mid-sleep sits idle while jobs wait. Two things end the sleep early:
- a message on the queue's wake channel, which every enqueue of a job due now publishes
  (`arq_jobs._client`) — a worker subscribes to its queue's channel;
- a finished job when the last claim left due jobs behind for lack of free slots.
The poll delay still bounds the wait when a message is lost (a reconnect) and for delayed jobs.
The listener outlives Redis outages: it reports them (`arq_jobs._worker.outage`) and subscribes
again once Redis answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from redis.asyncio import Redis

from arq_jobs._worker.outage import REDIS_ERRORS, RedisHealth

log = logging.getLogger(__name__)

CLAIM_SHARE = 4  # with due jobs left behind, a claim waits for 1/CLAIM_SHARE of the slots to be free


class Wakeup:
    def __init__(self, redis: Redis, channel: str, health: RedisHealth | None = None) -> None:
        self.redis = redis
        self.channel = channel
        self.health = health or RedisHealth()
        self.event = asyncio.Event()
        self.backlog = False
        self._listener: asyncio.Task[None] | None = None

    def claimed(self, more_due: bool) -> None:
        """After a claim: whether due jobs were left behind for lack of free slots."""
        self.backlog = more_due

    def slot_freed(self, free: int, slots: int) -> None:
        """A job finished, leaving `free` of the worker's `slots` free: poll again now if due jobs are
        waiting for a slot and a quarter of the slots are free. Claiming each freed slot on its own
        would start jobs one by one, each in its own round trips; a quarter starts them in batches
        (and the poll delay still bounds the wait)."""
        if self.backlog and free * CLAIM_SHARE >= slots:
            self.event.set()

    async def poll(self, step: float = 0.5) -> AsyncGenerator[float, None]:
        """`arq.utils.poll`, but the sleep between iterations ends when the event is set."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            before = loop.time()
            yield before - start
            wait = step - (loop.time() - before)
            if wait > 0 and not self.event.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.event.wait(), wait)
            self.event.clear()

    def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="wakeup-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    # no `recovered()`: Redis takes SUBSCRIBE while it still loads its data
                    await pubsub.subscribe(self.channel)
                    while True:
                        if await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0):
                            self.event.set()
            except REDIS_ERRORS as error:
                self.health.failed(error)
                await self.health.backoff()
