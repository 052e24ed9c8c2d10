"""`EventHub`: the event streams (GET /jobs/{id}/events) of one API process, sharing one Redis connection.

A stream opens a `Subscription` (at most `max_streams` at once, else TooManyStreamsError: 503 with
`Retry-After`), which reads the job's past events on the pooled connection without blocking (the
catch-up, from Last-Event-ID), then goes live: one reader task XREADs the streams of every live
subscription on one dedicated connection, from the oldest id one of them still needs, and hands each
the entries after its own last id. So N streams hold one blocked connection, not N.

- Wake-up: the reader blocks at most `block_ms` (≤ 1 s, under the socket timeout), and a subscription
  whose stream its XREAD in flight does not read adds an entry to the hub's wake stream (a key of its
  own that the XREAD also reads, `Keys.events_wake`), which ends the wait at once: the next XREAD
  reads the new stream too. An XADD is all it takes, so it works under an ACL that allows the
  project's commands (CLIENT UNBLOCK is @dangerous); if the wake fails, the bounded block still
  brings the new stream in within `block_ms`.
- Redis errors: the reader retries with backoff (0.1 s doubling to 5 s), logging the outage once and
  the recovery; the streams keep pinging meanwhile and resume from their own last ids: nothing is lost
  (unless trimmed by JOBS_EVENTS_MAXLEN meanwhile).
- A subscription whose client reads slower than its job's events come is handed at most `max_queued`
  events; beyond, it leaves the reader and reads the rest itself on the pool (a catch-up), then joins
  again.
- The reader runs while some subscription is live (started by the first to join, ending after the
  last left) on a connection of the pool, named `arq-jobs-events:<prefix>` where the ACL allows CLIENT
  SETNAME; `stop()` ends it with the app's lifespan.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import deque
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from arq_jobs._config import Settings
from arq_jobs._errors import TooManyStreamsError
from arq_jobs._jobs.events import EventReader, JobEvent, parse_event
from arq_jobs._keys import Keys
from arq_jobs._redis_errors import describe_redis_error

log = logging.getLogger(__name__)

PAGE = 100  # entries read per stream per XREAD
WAKE_TTL_MS = 60_000
RETRY_S = (0.1, 5.0)  # the reader's backoff after a Redis error: first wait, longest wait


def position(stream_id: str) -> tuple[int, int]:
    """A stream id (`ms-seq`, or `ms` for `ms-0`) in the order Redis gives entries."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class Subscription:
    """One event stream: catches up on the pool, then takes what the hub's reader hands it. `close()`
    it when the stream ends (it may be called again); that frees its place."""

    def __init__(self, hub: EventHub, job_id: str, after: str) -> None:
        self.hub = hub
        self.job_id = job_id
        self.key = hub.keys.events(job_id)
        self.cursor = after  # the last entry handed on (or read while catching up)
        self.position = position(after)
        self.live = False  # the reader hands it entries
        self.closed = False
        self.queued: deque[JobEvent] = deque()
        self.ready = asyncio.Event()

    async def next(self, timeout_s: float) -> list[JobEvent]:
        """The events after the last ones returned: while catching up, those one read finds (no wait);
        live, those the reader handed on, waiting up to `timeout_s` for one ([] if none came)."""
        if not self.queued and not self.live:
            return await self.catch_up()
        if not self.queued:
            self.ready.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self.ready.wait()
            except TimeoutError:
                return []
        found = list(self.queued)
        self.queued.clear()
        return found

    async def catch_up(self) -> list[JobEvent]:
        page = await self.hub.reader.read_page(self.job_id, self.cursor, count=PAGE)
        self.cursor, self.position = page.last_id, position(page.last_id)
        if not page.full and not any(event.is_last for event in page.events):
            await self.hub.join(self)
        return page.events

    def hand(self, entries: list[tuple[str, tuple[int, int], JobEvent | None]]) -> None:
        """The reader's entries of this stream: those after its last id are queued (unreadable ones
        skipped); a full queue makes it leave the reader and catch up by itself."""
        for entry_id, at, event in entries:
            if at <= self.position:
                continue
            if event is not None:
                if len(self.queued) >= self.hub.max_queued:
                    self.hub.leave(self)
                    break
                self.queued.append(event)
            self.cursor, self.position = entry_id, at
        if self.queued:
            self.ready.set()

    def close(self) -> None:
        """Leave the hub and free this stream's place."""
        if not self.closed:
            self.closed = True
            self.hub.leave(self)
            self.hub.streams -= 1


class EventHub:
    """The event streams of one API process: how many are open (at most `max_streams`) and the one
    reader that XREADs all live ones on one connection of `redis`'s pool."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        max_streams: int,
        block_ms: int = 1000,
        max_queued: int = 1000,
        retry_s: tuple[float, float] = RETRY_S,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.reader = EventReader(redis, keys)
        self.max_streams = max_streams
        self.block_ms = block_ms
        self.max_queued = max_queued
        self.retry_s = retry_s
        self.streams = 0  # open subscriptions
        self.live: dict[str, set[Subscription]] = {}  # stream key → its live subscriptions
        self.reading: dict[str, tuple[int, int]] = {}  # the XREAD in flight: its streams, from where
        self.blocked = False  # an XREAD is waiting that no one has woken yet
        self.wake_key = keys.events_wake(uuid.uuid4().hex)
        self.name = "arq-jobs-events:" + re.sub(r"[^A-Za-z0-9_.:-]", "_", keys.prefix)
        self.nameable = True  # until the ACL refuses CLIENT SETNAME
        self.task: asyncio.Task[None] | None = None  # the reader, while it runs
        self.tasks: set[asyncio.Task[None]] = set()  # with one still letting go of its connection
        self.stopped = False

    @classmethod
    def for_settings(cls, redis: Redis, settings: Settings) -> EventHub:
        """The hub of an API process: JOBS_SSE_MAX_STREAMS, and blocks well under the socket timeout."""
        block_ms = max(100, min(1000, round(settings.redis_timeout_s * 500)))
        return cls(redis, Keys(settings.key_prefix), max_streams=settings.sse_max_streams, block_ms=block_ms)

    def open(self, job_id: str, after: str = "0") -> Subscription:
        """A subscription to `job_id`'s events after the stream id `after`; TooManyStreamsError when
        `max_streams` are open."""
        if self.streams >= self.max_streams:
            raise TooManyStreamsError(self.max_streams)
        self.streams += 1
        return Subscription(self, job_id, after)

    async def join(self, subscription: Subscription) -> None:
        """`subscription` caught up: the reader hands it what follows (started, or woken, for it)."""
        if subscription.closed or subscription.live:
            return
        subscription.live = True
        self.live.setdefault(subscription.key, set()).add(subscription)
        if self.stopped:
            return
        if self.task is None:
            self.task = asyncio.create_task(self.run(), name="arq-jobs event hub")
            self.tasks.add(self.task)
            self.task.add_done_callback(self.forget)
        elif self.blocked and (
            subscription.key not in self.reading or subscription.position < self.reading[subscription.key]
        ):
            self.blocked = False
            await self.wake()

    def forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self.task is task:  # cancelled before it ran
            self.task = None

    def leave(self, subscription: Subscription) -> None:
        if not subscription.live:
            return
        subscription.live = False
        subscription.ready.set()  # a lagging one catches up on its next read
        found = self.live.get(subscription.key)
        if found is not None:
            found.discard(subscription)
            if not found:
                del self.live[subscription.key]

    async def wake(self) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self.wake_key, {"wake": "1"}, maxlen=1)
                pipe.pexpire(self.wake_key, WAKE_TTL_MS)
                await pipe.execute()
        except RedisError as exc:  # the bounded block brings the stream in
            log.debug("could not wake the event hub: %r", exc)

    async def run(self) -> None:
        """The reader: XREAD every live stream until none is left (or the hub stops)."""
        client = Redis(connection_pool=self.redis.connection_pool, single_connection_client=True)
        named = False
        failures = 0
        try:
            while self.live and not self.stopped:
                try:
                    if not named:
                        await self.name_connection(client)
                        named = True
                    self.hand(await self.read(client))
                except Exception as exc:
                    named = False  # a new connection: name it again
                    failures += 1
                    if failures == 1 and isinstance(exc, RedisError):
                        log.warning(
                            "event streams lost Redis (%s): retrying; open streams keep pinging",
                            describe_redis_error(exc),
                        )
                    elif failures == 1:
                        log.exception("event streams' reader failed: retrying")
                    low, high = self.retry_s
                    await asyncio.sleep(min(high, low * 2 ** min(failures - 1, 16)))
                    continue
                if failures:
                    log.info("event streams read Redis again, after %d failed reads", failures)
                    failures = 0
        finally:
            if self.task is asyncio.current_task():
                self.task = None  # a subscription joining from now on starts a new reader
            connection = client.connection
            if connection is not None:
                await connection.disconnect()  # back to the pool without its name or a pending reply
            await client.aclose()

    async def name_connection(self, client: Redis) -> None:
        if not self.nameable:
            return
        try:
            await client.client_setname(self.name)
        except ResponseError:  # an ACL without CLIENT SETNAME: unnamed, it works all the same
            self.nameable = False

    async def read(self, client: Redis) -> Any:
        streams = {self.wake_key: "$"}
        self.reading = {}
        for key, subscriptions in self.live.items():
            oldest = min(subscriptions, key=lambda s: s.position)
            streams[key] = oldest.cursor
            self.reading[key] = oldest.position
        self.blocked = True
        try:
            return await client.xread(streams, count=PAGE, block=self.block_ms)  # type: ignore[arg-type]
        finally:
            self.blocked = False
            self.reading = {}

    def hand(self, replies: Any) -> None:
        for raw_key, entries in replies or []:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            subscriptions = self.live.get(key)
            if not subscriptions:
                continue  # the wake stream, or a stream whose subscriptions left meanwhile
            job_id = next(iter(subscriptions)).job_id
            parsed = []
            for raw_id, fields in entries:
                found = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                parsed.append((found, position(found), parse_event(job_id, found, fields)))
            for subscription in list(subscriptions):
                subscription.hand(parsed)

    async def stop(self) -> None:
        """End the reader (open streams get no more events): at the end of the app's lifespan."""
        self.stopped = True
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
