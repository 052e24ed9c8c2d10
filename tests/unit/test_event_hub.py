"""The event hub (arq_jobs._jobs.event_hub) on fakeredis: streams counted up to the limit, caught up on
the pool and then fed by one shared reader, woken for a new stream, surviving a Redis outage; and the
SSE route's 503 when the process serves its limit of streams."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import fakeredis
import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI

from arq_jobs._api.deps import get_event_hub
from arq_jobs._client import JobClient
from arq_jobs._errors import TooManyStreamsError
from arq_jobs._jobs.event_hub import EventHub, Subscription
from arq_jobs._jobs.events import JobEvent
from arq_jobs._keys import Keys
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker

KEYS = Keys("unit")


@pytest.fixture
async def hub(arq_redis: ArqRedis) -> AsyncIterator[EventHub]:
    hub = EventHub(arq_redis, KEYS, max_streams=5, block_ms=200, retry_s=(0.05, 0.2))
    yield hub
    await hub.stop()
    assert not hub.tasks


async def until(subscription: Subscription, count: int, timeout_s: float = 5) -> list[JobEvent]:
    """The next `count` events of `subscription`, waiting at most `timeout_s` in all."""
    found: list[JobEvent] = []
    async with asyncio.timeout(timeout_s):
        while len(found) < count:
            found += await subscription.next(0.1)
    return found


async def test_streams_catch_up_then_one_reader_feeds_them_all(
    hub: EventHub, job_client: JobClient, run_worker: RunWorker
) -> None:
    jobs = [(await job_client.enqueue(noop, NoopInput(value=n))).job_id for n in range(2)]
    subscriptions = [hub.open(job_id) for job_id in jobs for _ in range(2)]
    for subscription in subscriptions:  # the past, read on the pool at once
        assert [e.event for e in await subscription.next(5)] == ["pending"]
        assert subscription.live
    assert len(hub.tasks) == 1 and set(hub.live) == {KEYS.events(job_id) for job_id in jobs}

    await run_worker()
    for subscription in subscriptions:
        events = await until(subscription, 2)
        assert [e.event for e in events] == ["running", "succeeded"]
        assert events[-1].is_last and events[-1].status.job_id == subscription.job_id
        subscription.close()
    assert hub.streams == 0 and hub.live == {}
    await asyncio.sleep(0.3)  # the reader's last XREAD ends: with no stream left, so does the reader
    assert hub.task is None and not hub.tasks


async def test_a_resumed_stream_gets_only_what_follows_its_last_event_id(
    hub: EventHub, job_client: JobClient, run_worker: RunWorker
) -> None:
    job_id = (await job_client.enqueue(noop, NoopInput())).job_id
    await run_worker()
    first = await hub.open(job_id).next(1)
    assert [e.event for e in first] == ["pending", "running", "succeeded"]
    resumed = hub.open(job_id, first[0].id)
    assert [e.id for e in await resumed.next(1)] == [e.id for e in first[1:]]


async def test_beyond_the_limit_a_stream_is_refused_and_a_closed_one_frees_its_place(hub: EventHub) -> None:
    opened = [hub.open(f"job-{n}") for n in range(5)]
    with pytest.raises(TooManyStreamsError) as refused:
        hub.open("job-5")
    assert refused.value.details() == {"limit": 5}
    assert refused.value.headers() == {"Retry-After": "5"}
    opened[0].close()
    opened[0].close()  # closing again frees nothing more
    assert hub.streams == 4
    hub.open("job-5")
    with pytest.raises(TooManyStreamsError):
        hub.open("job-6")


async def test_a_new_stream_is_read_at_once_not_after_the_readers_block(
    arq_redis: ArqRedis, job_client: JobClient
) -> None:
    hub = EventHub(arq_redis, KEYS, max_streams=5, block_ms=5000)
    try:
        first = hub.open((await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id)
        await first.next(1)
        await asyncio.sleep(0.2)
        assert hub.blocked  # waiting on the first job's stream, for 5 s
        second = hub.open((await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id)
        assert [e.event for e in await second.next(1)] == ["scheduled"]
        started = time.monotonic()
        await job_client.cancel(second.job_id)
        assert [e.event for e in await until(second, 1, timeout_s=4)] == ["cancelled"]
        assert time.monotonic() - started < 1.0  # the reader was woken for it, not left to its 5 s block
    finally:
        await hub.stop()


async def test_a_stream_outlives_a_redis_outage_of_the_reader_and_misses_nothing(
    hub: EventHub, arq_redis: ArqRedis, job_client: JobClient, caplog: pytest.LogCaptureFixture
) -> None:
    server: fakeredis.FakeServer = arq_redis.connection_pool.connection_kwargs["server"]
    job_id = (await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id
    subscription = hub.open(job_id)
    assert [e.event for e in await subscription.next(1)] == ["scheduled"]
    caplog.set_level(logging.INFO, logger="arq_jobs._jobs.event_hub")
    server.connected = False
    await asyncio.sleep(0.6)  # the reader's XREAD in flight ends, the next ones fail
    assert await subscription.next(0.2) == []  # no error: the stream just idles (and pings)
    assert subscription.live and len(hub.tasks) == 1
    server.connected = True
    await job_client.cancel(job_id)
    assert [e.event for e in await until(subscription, 1)] == ["cancelled"]
    messages = [r.getMessage() for r in caplog.records if r.name == "arq_jobs._jobs.event_hub"]
    lost = "event streams lost Redis (ConnectionError: FakeRedis is emulating a connection error.): retrying"
    assert any(m.startswith(lost) for m in messages), messages
    assert any(m.startswith("event streams read Redis again, after ") for m in messages), messages


async def test_a_stream_that_lags_behind_reads_the_rest_itself_in_order(
    arq_redis: ArqRedis, job_client: JobClient
) -> None:
    hub = EventHub(arq_redis, KEYS, max_streams=5, block_ms=200, max_queued=3)
    try:
        job_id = (await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id
        subscription = hub.open(job_id)
        scheduled = await subscription.next(1)
        await asyncio.sleep(0.05)
        key = KEYS.events(job_id)
        (_, fields), *_ = await arq_redis.xrange(key)
        async with arq_redis.pipeline(transaction=False) as pipe:
            for _ in range(10):
                pipe.xadd(key, {**fields, b"event": b"progress"})
            added = await pipe.execute()
        handed = await subscription.next(1)
        assert len(handed) == 3 and not subscription.live  # the reader handed it 3, then let it go
        events = handed + await until(subscription, 7)
        assert [e.id for e in events] == [raw.decode() for raw in added]
        assert subscription.live  # caught up, fed by the reader again
        await job_client.cancel(job_id)
        assert [e.event for e in await until(subscription, 1)] == ["cancelled"]
        assert scheduled[0].event == "scheduled"
    finally:
        await hub.stop()


async def test_stop_ends_the_reader_with_streams_still_open(hub: EventHub, job_client: JobClient) -> None:
    subscription = hub.open((await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id)
    await subscription.next(1)
    (reader,) = hub.tasks
    await hub.stop()
    assert reader.done() and not hub.tasks and hub.task is None
    assert await subscription.next(0.1) == []


async def test_the_route_answers_503_with_retry_after_when_the_process_serves_its_limit(
    app: FastAPI, client: httpx.AsyncClient, arq_redis: ArqRedis, job_client: JobClient
) -> None:
    hub = EventHub(arq_redis, KEYS, max_streams=1)
    app.dependency_overrides[get_event_hub] = lambda: hub
    job_id = (await job_client.enqueue(noop, NoopInput(), delay=3600)).job_id
    held = hub.open(job_id)

    refused = await client.get(f"/jobs/{job_id}/events")
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {
        "error": "too_many_streams",
        "message": "this API process already serves its limit of 1 event streams (JOBS_SSE_MAX_STREAMS); "
        "try again in 5 s",
        "limit": 1,
    }
    held.close()
    missing = await client.get("/jobs/no-such-job/events")
    assert (missing.status_code, missing.json()["error"]) == (404, "job_not_found")
    assert hub.streams == 0  # the refused stream gave its place back

    await job_client.cancel(job_id)
    ended = await client.get(f"/jobs/{job_id}/events")  # the stream ends with the job's last event
    assert ended.status_code == 200
    assert [line for line in ended.text.splitlines() if line.startswith("event: ")] == [
        "event: scheduled",
        "event: cancelled",
    ]
    assert hub.streams == 0


async def test_the_openapi_schema_declares_the_503(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    answers = schema["paths"]["/jobs/{job_id}/events"]["get"]["responses"]
    assert set(answers) >= {"200", "404", "503"}
    assert "JOBS_SSE_MAX_STREAMS" in answers["503"]["description"]


async def test_without_the_lifespans_hub_a_stream_gets_one_of_its_own(
    client: httpx.AsyncClient, job_client: JobClient, run_worker: RunWorker
) -> None:
    job_id = (await job_client.enqueue(noop, NoopInput())).job_id
    await run_worker()
    ended = await client.get(f"/jobs/{job_id}/events")  # the app's AppState was built without a hub
    assert ended.status_code == 200 and ended.headers["content-type"].startswith("text/event-stream")
    assert [line for line in ended.text.splitlines() if line.startswith("event: ")] == [
        "event: pending",
        "event: running",
        "event: succeeded",
    ]
