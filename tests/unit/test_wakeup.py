"""Wakeup: the poll loop's sleep, ended early by a wake-up message or a freed slot; the listener on
the wake channel (the real Redis for pub/sub, database 12, a channel of its own)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import fakeredis
import pytest
from arq.connections import ArqRedis
from fakeredis.aioredis import FakeAsyncRedisConnection
from redis.asyncio import ConnectionPool, Redis

from arq_jobs._worker.outage import RedisHealth
from arq_jobs._worker.wakeup import Wakeup
from devserver.redis_server import is_reachable

REAL_REDIS_URL = "redis://127.0.0.1:6379/12"
STEP_S = 0.2


@pytest.fixture
def wakeup(arq_redis: ArqRedis) -> Wakeup:
    return Wakeup(arq_redis, "unit:queue:default:wake")


async def timed_next(polls: AsyncIterator[float]) -> float:
    started = time.monotonic()
    await anext(polls)
    return time.monotonic() - started


async def test_poll_sleeps_the_full_step_when_nothing_happens(wakeup: Wakeup) -> None:
    polls = wakeup.poll(STEP_S)
    assert await timed_next(polls) < 0.05  # the first iteration runs at once
    for _ in range(2):
        assert STEP_S - 0.01 <= await timed_next(polls) < STEP_S + 0.3
    await polls.aclose()


async def test_poll_yields_the_time_since_it_started(wakeup: Wakeup) -> None:
    polls = wakeup.poll(STEP_S)
    assert await anext(polls) < 0.05
    assert STEP_S - 0.01 <= await anext(polls) < STEP_S + 0.3
    assert 2 * STEP_S - 0.02 <= await anext(polls) < 2 * STEP_S + 0.6
    await polls.aclose()


async def test_poll_sleeps_only_what_is_left_of_the_step(wakeup: Wakeup) -> None:
    polls = wakeup.poll(STEP_S)
    await anext(polls)
    await asyncio.sleep(STEP_S / 2)  # the iteration itself took half the step
    assert await timed_next(polls) < STEP_S / 2 + 0.1
    await asyncio.sleep(STEP_S * 2)  # longer than the step: no sleep at all
    assert await timed_next(polls) < 0.05
    await polls.aclose()


async def test_poll_ends_its_sleep_when_the_event_is_set(wakeup: Wakeup) -> None:
    polls = wakeup.poll(5.0)
    await anext(polls)
    asyncio.get_running_loop().call_later(0.05, wakeup.event.set)
    assert 0.04 <= await timed_next(polls) < 1.0
    assert not wakeup.event.is_set()  # consumed: the next sleep is a full one again
    asyncio.get_running_loop().call_later(0.05, wakeup.event.set)
    assert 0.04 <= await timed_next(polls) < 1.0
    await polls.aclose()


async def test_an_event_set_during_an_iteration_skips_the_next_sleep(wakeup: Wakeup) -> None:
    polls = wakeup.poll(STEP_S)
    await anext(polls)
    wakeup.event.set()  # e.g. a message arrived while the worker was claiming
    assert await timed_next(polls) < 0.05
    assert STEP_S - 0.01 <= await timed_next(polls) < STEP_S + 0.3  # and only once
    await polls.aclose()


def test_slot_freed_wakes_only_when_due_jobs_were_left_behind(wakeup: Wakeup) -> None:
    wakeup.slot_freed(1, 1)
    assert not wakeup.event.is_set()  # nothing was left behind yet
    wakeup.claimed(False)
    wakeup.slot_freed(1, 1)
    assert not wakeup.event.is_set()
    wakeup.claimed(True)
    wakeup.slot_freed(1, 1)
    assert wakeup.event.is_set()
    wakeup.event.clear()
    wakeup.claimed(False)  # a later claim took every due job
    wakeup.slot_freed(1, 1)
    assert not wakeup.event.is_set()


def test_a_backlog_is_claimed_once_a_quarter_of_the_slots_is_free(wakeup: Wakeup) -> None:
    wakeup.claimed(True)
    for free in range(1, 25):  # one claim per freed slot would start the jobs one by one
        wakeup.slot_freed(free, 100)
        assert not wakeup.event.is_set(), free
    wakeup.slot_freed(25, 100)
    assert wakeup.event.is_set()


async def test_a_freed_slot_ends_the_sleep_only_with_a_backlog(wakeup: Wakeup) -> None:
    polls = wakeup.poll(STEP_S)
    await anext(polls)
    wakeup.claimed(False)
    asyncio.get_running_loop().call_later(0.02, wakeup.slot_freed, 1, 1)
    assert await timed_next(polls) >= STEP_S - 0.01
    wakeup.claimed(True)
    asyncio.get_running_loop().call_later(0.02, wakeup.slot_freed, 1, 1)
    assert await timed_next(polls) < STEP_S - 0.05
    await polls.aclose()


@pytest.fixture
async def real_redis() -> AsyncIterator[Redis]:
    if not is_reachable(REAL_REDIS_URL):
        pytest.skip("no Redis on 127.0.0.1:6379")
    redis = Redis.from_url(REAL_REDIS_URL)
    yield redis
    await redis.aclose()


async def subscribers(redis: Redis, channel: str) -> int:
    [(_, count)] = await redis.pubsub_numsub(channel)
    return int(count)


async def wait_until_subscribed(redis: Redis, channel: str, count: int = 1) -> None:
    deadline = time.monotonic() + 5
    while await subscribers(redis, channel) != count:
        assert time.monotonic() < deadline, f"{channel} has not {count} subscriber(s) after 5 s"
        await asyncio.sleep(0.01)


async def test_the_listener_wakes_the_poll_on_a_message_and_stops_cleanly(real_redis: Redis) -> None:
    channel = f"unit-wakeup-{uuid.uuid4().hex}:wake"
    wakeup = Wakeup(real_redis, channel)
    wakeup.start()
    try:
        await wait_until_subscribed(real_redis, channel)
        polls = wakeup.poll(5.0)
        await anext(polls)

        async def publish_soon() -> None:
            await asyncio.sleep(0.05)
            await real_redis.publish(channel, b"")

        publisher = asyncio.create_task(publish_soon())
        assert await timed_next(polls) < 2.0
        await publisher
        await polls.aclose()
        await real_redis.publish(channel, b"")
        await asyncio.wait_for(wakeup.event.wait(), 2.0)  # every message sets the event
    finally:
        await wakeup.stop()
    assert wakeup._listener is None
    await wait_until_subscribed(real_redis, channel, count=0)  # unsubscribed, connection given back
    await wakeup.stop()  # stopping twice is fine


async def test_the_listener_ignores_other_channels(real_redis: Redis) -> None:
    channel = f"unit-wakeup-{uuid.uuid4().hex}:wake"
    wakeup = Wakeup(real_redis, channel)
    wakeup.start()
    try:
        await wait_until_subscribed(real_redis, channel)
        await real_redis.publish(f"{channel}-other", b"")
        await asyncio.sleep(0.2)
        assert not wakeup.event.is_set()
    finally:
        await wakeup.stop()


async def test_the_listener_reconnects_after_losing_redis(caplog: pytest.LogCaptureFixture) -> None:
    server = fakeredis.FakeServer()
    server.connected = False  # Redis is down when the worker starts
    pool = ConnectionPool(connection_class=FakeAsyncRedisConnection, server=server)
    redis = Redis(connection_pool=pool)
    health = RedisHealth(first_s=0.02, max_s=0.05)
    wakeup = Wakeup(redis, "unit:queue:default:wake", health)
    caplog.set_level(logging.INFO, logger="arq_jobs._worker.outage")
    wakeup.start()
    try:
        await asyncio.sleep(0.3)
        assert not health.up
        assert [r.getMessage().split(":")[0] for r in caplog.records] == ["Redis unavailable"]  # once
        assert wakeup._listener is not None and not wakeup._listener.done()  # it keeps trying
        server.connected = True
        deadline = time.monotonic() + 5
        while not wakeup.event.is_set():
            assert time.monotonic() < deadline, "no wake-up after Redis came back"
            await redis.publish("unit:queue:default:wake", b"")
            await asyncio.sleep(0.05)
        assert len(caplog.records) == 1  # the claim loop and the beat say when Redis is back
    finally:
        await wakeup.stop()
        await redis.aclose()
        await pool.disconnect()
