"""What a job leaves in Redis once it ended (includes/transition.lua, on fakeredis): kept per outcome
(`keep_succeeded_s` / `keep_failed_s`), by count per queue and outcome, its event stream only
`events_keep_s` (then GET /jobs/{id}/events gives its last event read off the record), and listing
indexes trimmed by one write in sixteen, without a TTL."""

from __future__ import annotations

import httpx
from arq.connections import ArqRedis

from arq_jobs._client import JobClient
from arq_jobs._config import Settings
from arq_jobs._jobs.records import FINISHED_AT
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.transitions import Phase, Transition
from arq_jobs._keys import Keys
from workers.tasks.noop import NoopInput, noop

from .conftest import RunWorker, make_settings

KEYS = Keys("unit")
NOW = 1_800_000_000_000


async def created(redis: ArqRedis, settings: Settings, job_id: str, enqueued_ms: int = NOW) -> None:
    """A pending job of queue `default` (its record, indexes and first event), and ARQ's result."""
    record = {"task": "noop", "queue": "default", "enqueued_at": enqueued_ms, "max_attempts": 1}
    await redis.hset(KEYS.record(job_id), mapping=record)  # type: ignore[arg-type]
    await redis.pexpire(KEYS.record(job_id), 3_600_000)
    await redis.set(Keys.arq_result(job_id), b"result")
    pending = Transition(job_id, JobState.PENDING, Phase.QUEUED, enqueued_ms, created=True)
    assert await pending.apply(redis, settings)


async def ended(redis: ArqRedis, settings: Settings, job_id: str, state: JobState, phase: Phase) -> None:
    assert await Transition(job_id, state, phase, NOW, fields={FINISHED_AT: NOW}).apply(redis, settings)


async def test_transition_of_an_ended_job_keeps_it_as_its_outcome_says_and_its_events_shorter(
    arq_redis: ArqRedis,
) -> None:
    settings = make_settings(keep_succeeded_s=100, keep_failed_s=1_000, events_keep_s=10)
    for job_id in ("ok", "bad", "gone"):
        await created(arq_redis, settings, job_id)
    await ended(arq_redis, settings, "ok", JobState.SUCCEEDED, Phase.SUCCEEDED)
    await ended(arq_redis, settings, "bad", JobState.FAILED, Phase.FAILED)
    await ended(arq_redis, settings, "gone", JobState.CANCELLED, Phase.CANCELLED)
    for job_id, keep_ms in (("ok", 100_000), ("bad", 1_000_000), ("gone", 1_000_000)):
        assert keep_ms - 1_000 < await arq_redis.pttl(KEYS.record(job_id)) <= keep_ms, job_id
        assert 9_000 < await arq_redis.pttl(KEYS.events(job_id)) <= 10_000, job_id


async def test_a_stream_is_never_kept_longer_than_its_record(arq_redis: ArqRedis) -> None:
    settings = make_settings(keep_succeeded_s=5, events_keep_s=60)
    await created(arq_redis, settings, "short")
    await ended(arq_redis, settings, "short", JobState.SUCCEEDED, Phase.SUCCEEDED)
    assert 4_000 < await arq_redis.pttl(KEYS.events("short")) <= 5_000


async def test_a_waiting_or_running_job_keeps_its_streams_ttl_as_long_as_its_record(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    await created(arq_redis, settings, "busy")
    running = Transition("busy", JobState.RUNNING, Phase.RUNNING, NOW)
    assert await running.apply(arq_redis, settings)
    record_ttl = await arq_redis.pttl(KEYS.record("busy"))
    assert 3_590_000 < record_ttl and abs(await arq_redis.pttl(KEYS.events("busy")) - record_ttl) < 1_000


async def test_keep_count_deletes_the_oldest_ended_jobs_of_the_queue_and_outcome(arq_redis: ArqRedis) -> None:
    settings = make_settings(keep_succeeded_count=2)
    ids = ["s1", "s2", "s3", "s4"]
    for n, job_id in enumerate(ids):
        await created(arq_redis, settings, job_id, NOW + n)
    await created(arq_redis, settings, "f1", NOW - 10)
    await ended(arq_redis, settings, "f1", JobState.FAILED, Phase.FAILED)  # failed ones: no limit set
    for job_id in ids:
        await ended(arq_redis, settings, job_id, JobState.SUCCEEDED, Phase.SUCCEEDED)

    assert await arq_redis.zrange(KEYS.index("phase", "succeeded:queue:default"), 0, -1) == [b"s3", b"s4"]
    assert await arq_redis.zrange(KEYS.index("phase", "succeeded"), 0, -1) == [b"s3", b"s4"]
    for job_id in ("s1", "s2"):
        keys = (KEYS.record(job_id), KEYS.events(job_id), Keys.arq_result(job_id))
        assert await arq_redis.exists(*keys) == 0, job_id
    for job_id in ("s3", "s4", "f1"):
        keys = (KEYS.record(job_id), KEYS.events(job_id), Keys.arq_result(job_id))
        assert await arq_redis.exists(*keys) == 3, job_id
    assert await arq_redis.zrange(KEYS.index("phase", "failed"), 0, -1) == [b"f1"]
    for index in (KEYS.index("all"), KEYS.index("queue", "default"), KEYS.index("task", "noop")):
        assert await arq_redis.zrange(index, 0, -1) == [b"f1", b"s3", b"s4"], index


async def test_keep_count_never_deletes_the_job_ending_now(arq_redis: ArqRedis) -> None:
    settings = make_settings(keep_succeeded_count=1)
    await created(arq_redis, settings, "late", NOW - 60_000)  # due long ago, ends last
    await created(arq_redis, settings, "new", NOW)
    await ended(arq_redis, settings, "new", JobState.SUCCEEDED, Phase.SUCCEEDED)
    await ended(arq_redis, settings, "late", JobState.SUCCEEDED, Phase.SUCCEEDED)
    kept = await arq_redis.zrange(KEYS.index("phase", "succeeded:queue:default"), 0, -1)
    assert kept == [b"late"]
    assert (
        await arq_redis.exists(KEYS.record("late")) == 1 and await arq_redis.exists(KEYS.record("new")) == 0
    )


async def test_an_index_is_trimmed_by_one_write_in_sixteen_and_loses_its_ttl(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    index = KEYS.index("task", "noop")
    await arq_redis.zadd(index, {"stale": 1})  # far older than the horizon
    await arq_redis.pexpire(index, 60_000)  # as earlier versions wrote it
    await created(arq_redis, settings, "job-01")  # '0' + '1' = 97: not a trimming write
    assert await arq_redis.zrange(index, 0, -1) == [b"stale", b"job-01"]
    assert await arq_redis.pttl(index) > 0
    await created(arq_redis, settings, "job-00", NOW + 1)  # '0' + '0' = 96 = 6 * 16: trims
    assert await arq_redis.zrange(index, 0, -1) == [b"job-01", b"job-00"]
    assert await arq_redis.pttl(index) == -1
    await created(arq_redis, settings, "7")  # a one-character id: trimmed by its one byte ('7' = 55)
    assert await arq_redis.zrange(index, 0, -1) == [b"7", b"job-01", b"job-00"]


async def test_an_ended_jobs_events_give_its_last_event_once_its_stream_expired(
    client: httpx.AsyncClient, arq_redis: ArqRedis, job_client: JobClient, run_worker: RunWorker
) -> None:
    job_id = (await job_client.enqueue(noop, NoopInput())).job_id
    await run_worker()
    status = await job_client.status(job_id)
    assert status.status is JobState.SUCCEEDED and status.finished_at is not None
    full = await client.get(f"/jobs/{job_id}/events")
    events = [line for line in full.text.splitlines() if line.startswith("event: ")]
    assert events == ["event: pending", "event: running", "event: succeeded"]

    await arq_redis.delete(KEYS.events(job_id))  # what `events_keep_s` after the end does
    last = await client.get(f"/jobs/{job_id}/events")
    assert last.status_code == 200
    finished_ms = int(status.finished_at.timestamp() * 1000)
    lines = last.text.splitlines()
    assert lines[:2] == [f"id: {finished_ms}-0", "event: succeeded"]
    assert lines[2].startswith("data: ") and '"status":"succeeded"' in lines[2]
    assert len([line for line in lines if line.startswith("event: ")]) == 1

    resumed = await client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": f"{finished_ms}-0"})
    assert resumed.status_code == 200 and "event: " not in resumed.text  # it already had it
