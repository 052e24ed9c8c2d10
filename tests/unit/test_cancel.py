from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from arq.connections import ArqRedis
from arq.jobs import serialize_result

from arq_jobs._arq import ABORT_SET
from arq_jobs._client import CANCEL_SCRIPT, JobClient, cancel_call
from arq_jobs._clock import now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import JobNotCancellableError, JobNotFoundError
from arq_jobs._jobs.records import JobError as RecordError
from arq_jobs._jobs.records import retrying_fields
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._serializer import dumps
from workers.tasks.noop import NoopInput, noop

QUEUE = "unit:queue:default"


async def keys_mentioning(redis: ArqRedis, job_id: str) -> list[bytes]:
    return sorted([key async for key in redis.scan_iter(match=f"*{job_id}*")])


async def finish(redis: ArqRedis, job_id: str, success: bool) -> None:
    """What ARQ does when a job ends: store the result and drop the job, its queue entry and lease."""
    value: object = {"value": 1} if success else RuntimeError("disk full")
    result = serialize_result(
        "noop", ({"value": 1},), {}, 1, 1_000, success, value, 2_000, 3_000, "ref", QUEUE, job_id,
        serializer=dumps,
    )  # fmt: skip
    assert result is not None
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(Keys.arq_in_progress(job_id), Keys.arq_job(job_id))
        pipe.zrem(QUEUE, job_id)
        pipe.set(Keys.arq_result(job_id), result)
        await pipe.execute()


def ms(value: datetime | None) -> int:
    assert value is not None
    return round(value.timestamp() * 1000)


# --- JobClient.cancel ------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [None, 300])
async def test_cancel_a_waiting_job(job_client: JobClient, arq_redis: ArqRedis, delay: int | None) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1), delay=delay)
    assert job.status is (JobState.PENDING if delay is None else JobState.SCHEDULED)
    other = await job_client.enqueue(noop, NoopInput(value=2), delay=delay)
    before = now_ms()
    cancelled = await job_client.cancel(job.job_id)
    after = now_ms()
    assert cancelled.status is JobState.CANCELLED
    assert cancelled.is_terminal is True
    assert cancelled.cancel_requested is False
    assert before <= ms(cancelled.finished_at) <= after
    assert cancelled.scheduled_for == job.scheduled_for

    assert await arq_redis.zscore(QUEUE, job.job_id) is None
    assert await arq_redis.exists(Keys.arq_job(job.job_id)) == 0
    assert await arq_redis.zrange(QUEUE, 0, -1) == [other.job_id.encode()]  # only this job was removed
    assert await arq_redis.exists(Keys.arq_job(other.job_id)) == 1
    record = await arq_redis.hgetall(f"unit:job:{job.job_id}")
    assert record[b"state"] == b"cancelled" and before <= int(record[b"finished_at"]) <= after
    assert await arq_redis.pttl(f"unit:job:{job.job_id}") > 0  # the record still expires

    again = await job_client.status(job.job_id)
    assert again == cancelled
    assert (await job_client.status(other.job_id)).status is job.status


async def test_second_cancel_is_not_cancellable(job_client: JobClient) -> None:
    job = await job_client.enqueue(noop, NoopInput(), delay=60)
    first = await job_client.cancel(job.job_id)
    with pytest.raises(JobNotCancellableError) as refused:
        await job_client.cancel(job.job_id)
    assert refused.value.details() == {"job_id": job.job_id, "status": "cancelled"}
    assert str(refused.value) == (
        f"job {job.job_id} has already ended (cancelled); only unfinished jobs can be cancelled"
    )
    assert await job_client.status(job.job_id) == first  # finished_at not moved


async def test_cancel_a_retrying_job(job_client: JobClient, arq_redis: ArqRedis) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    record = f"unit:job:{job.job_id}"
    await arq_redis.hset(record, mapping={"attempt": 1, "started_at": now_ms() - 500})
    await arq_redis.hset(
        record,
        mapping=retrying_fields(now_ms() + 30_000, RecordError(type="TransientError", message="later")),
    )
    await arq_redis.set(Keys.arq_retry(job.job_id), b"1")
    assert (await job_client.status(job.job_id)).status is JobState.RETRYING

    cancelled = await job_client.cancel(job.job_id)
    assert (cancelled.status, cancelled.next_attempt_at, cancelled.error) == (JobState.CANCELLED, None, None)
    assert await arq_redis.hget(record, "next_attempt_at") is None
    assert await arq_redis.exists(Keys.arq_retry(job.job_id), Keys.arq_job(job.job_id)) == 0
    assert await arq_redis.zscore(QUEUE, job.job_id) is None


async def test_cancel_a_job_on_its_own_queue(job_client: JobClient, arq_redis: ArqRedis) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    # a job enqueued to another queue (as a task with its own queue would be)
    await arq_redis.zrem(QUEUE, job.job_id)
    await arq_redis.zadd("unit:queue:slow", {job.job_id: now_ms()})
    await arq_redis.hset(f"unit:job:{job.job_id}", "queue", "slow")
    assert (await job_client.cancel(job.job_id)).status is JobState.CANCELLED
    assert await arq_redis.zcard("unit:queue:slow") == 0


async def test_cancel_an_unknown_job_leaves_nothing_behind(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    unknown = "f" * 32
    with pytest.raises(JobNotFoundError) as missing:
        await job_client.cancel(unknown)
    assert missing.value.details() == {"job_id": unknown}
    assert await keys_mentioning(arq_redis, unknown) == []
    assert await arq_redis.exists(ABORT_SET) == 0
    assert [key async for key in arq_redis.scan_iter()] == []


async def test_cancel_a_running_job_requests_it(job_client: JobClient, arq_redis: ArqRedis) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    started = now_ms()
    await arq_redis.set(Keys.arq_in_progress(job.job_id), b"1")
    await arq_redis.hset(f"unit:job:{job.job_id}", mapping={"attempt": 1, "started_at": started})
    before = now_ms()
    status = await job_client.cancel(job.job_id)
    after = now_ms()
    assert (status.status, status.is_terminal, status.cancel_requested) == (JobState.RUNNING, False, True)
    assert (status.attempt, status.finished_at) == (1, None)
    requested = await arq_redis.hget(f"unit:job:{job.job_id}", "cancel_requested")
    assert requested is not None and before <= int(requested) <= after
    # the worker stops it: the job's keys stay until then
    assert await arq_redis.hget(f"unit:job:{job.job_id}", "state") is None
    assert await arq_redis.exists(Keys.arq_job(job.job_id), Keys.arq_in_progress(job.job_id)) == 2
    assert await arq_redis.zscore(QUEUE, job.job_id) is not None
    assert await arq_redis.exists(ABORT_SET) == 0
    # asking again is fine while it still runs
    assert (await job_client.cancel(job.job_id)).cancel_requested is True


@pytest.mark.parametrize(("success", "state"), [(True, "succeeded"), (False, "failed")])
async def test_cancel_an_ended_job_is_refused(
    job_client: JobClient, arq_redis: ArqRedis, success: bool, state: str
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1))
    await finish(arq_redis, job.job_id, success)
    record_before = await arq_redis.hgetall(f"unit:job:{job.job_id}")
    with pytest.raises(JobNotCancellableError) as refused:
        await job_client.cancel(job.job_id)
    assert refused.value.details() == {"job_id": job.job_id, "status": state}
    assert await arq_redis.hgetall(f"unit:job:{job.job_id}") == record_before
    assert (await job_client.status(job.job_id)).status is JobState(state)


async def test_script_refuses_a_job_that_ended_after_the_status_read(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    """The script itself checks again: a result written after `status()` read the job wins."""
    job = await job_client.enqueue(noop, NoopInput(value=1))
    await arq_redis.set(Keys.arq_in_progress(job.job_id), b"1")
    await arq_redis.set(Keys.arq_result(job.job_id), b'{"s": true}')
    outcome = await run_script(
        arq_redis, CANCEL_SCRIPT, *cancel_call(job_client.settings, job.job_id, QUEUE, now_ms())
    )
    assert outcome == b"ended"
    record = await arq_redis.hgetall(f"unit:job:{job.job_id}")
    assert b"cancel_requested" not in record and b"state" not in record
    assert await arq_redis.zscore(QUEUE, job.job_id) is not None


async def test_script_answers_missing_without_writing(arq_redis: ArqRedis, settings: Settings) -> None:
    call = cancel_call(settings, "x", QUEUE, 1)
    assert await run_script(arq_redis, CANCEL_SCRIPT, *call) == b"missing"
    # a record without the job's data (ARQ already dropped it): missing, and the record is untouched
    await arq_redis.hset("unit:job:x", mapping={"task": "noop", "enqueued_at": 1})
    assert await run_script(arq_redis, CANCEL_SCRIPT, *call) == b"missing"
    assert await arq_redis.hgetall("unit:job:x") == {b"task": b"noop", b"enqueued_at": b"1"}


# --- DELETE /jobs/{id} -----------------------------------------------------------------------------


async def test_delete_a_scheduled_job_is_200_cancelled(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    job_id = (await client.post("/jobs/noop", params={"delay": 120}, json={"value": 1})).json()["job_id"]
    before = now_ms()
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["job_id"], body["task"], body["status"], body["is_terminal"]) == (
        job_id,
        "noop",
        "cancelled",
        True,
    )
    assert body["cancel_requested"] is False
    finished = datetime.fromisoformat(body["finished_at"])
    assert finished.tzinfo is not None and before - 1 <= finished.timestamp() * 1000 <= now_ms() + 1
    assert await arq_redis.zscore(QUEUE, job_id) is None
    assert await arq_redis.exists(Keys.arq_job(job_id)) == 0
    status = await client.get(f"/jobs/{job_id}")
    assert status.status_code == 200 and status.json() == body


async def test_delete_twice_is_409(client: httpx.AsyncClient) -> None:
    job_id = (await client.post("/jobs/noop", json={})).json()["job_id"]
    assert (await client.delete(f"/jobs/{job_id}")).status_code == 200
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409
    assert response.json() == {
        "error": "job_not_cancellable",
        "message": f"job {job_id} has already ended (cancelled); only unfinished jobs can be cancelled",
        "job_id": job_id,
        "status": "cancelled",
    }


async def test_delete_an_unknown_job_is_404_and_writes_nothing(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    await client.post("/jobs/noop", json={})  # something else in Redis, to be left alone
    keys_before = sorted([key async for key in arq_redis.scan_iter()])
    unknown = "0123456789abcdef" * 2
    response = await client.delete(f"/jobs/{unknown}")
    assert response.status_code == 404
    assert response.json() == {
        "error": "job_not_found",
        "message": f"no job with id '{unknown}' (unknown, or its record has expired)",
        "job_id": unknown,
    }
    assert await keys_mentioning(arq_redis, unknown) == []
    assert await arq_redis.exists(ABORT_SET) == 0
    assert sorted([key async for key in arq_redis.scan_iter()]) == keys_before


async def test_delete_a_running_job_is_202_cancel_requested(
    client: httpx.AsyncClient, arq_redis: ArqRedis
) -> None:
    job_id = (await client.post("/jobs/generate_report", json={"rows": 2})).json()["job_id"]
    await arq_redis.set(Keys.arq_in_progress(job_id), b"1")
    await arq_redis.hset(f"unit:job:{job_id}", mapping={"attempt": 1, "started_at": now_ms()})
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["cancel_requested"], body["is_terminal"], body["finished_at"]) == (
        "running", True, False, None
    )  # fmt: skip
    assert await arq_redis.hget(f"unit:job:{job_id}", "cancel_requested") is not None
    assert (await client.get(f"/jobs/{job_id}")).json()["cancel_requested"] is True
    assert await arq_redis.exists(ABORT_SET) == 0


@pytest.mark.parametrize(("success", "state"), [(True, "succeeded"), (False, "failed")])
async def test_delete_an_ended_job_is_409(
    client: httpx.AsyncClient, arq_redis: ArqRedis, success: bool, state: str
) -> None:
    job_id = (await client.post("/jobs/noop", json={"value": 1})).json()["job_id"]
    await finish(arq_redis, job_id, success)
    response = await client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409
    assert response.json() == {
        "error": "job_not_cancellable",
        "message": f"job {job_id} has already ended ({state}); only unfinished jobs can be cancelled",
        "job_id": job_id,
        "status": state,
    }
    status = (await client.get(f"/jobs/{job_id}")).json()
    assert (status["status"], status["cancel_requested"]) == (state, False)
    assert await arq_redis.hget(f"unit:job:{job_id}", "cancel_requested") is None


async def test_a_cancelled_job_stays_cancelled_even_if_arq_writes_a_result(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    cancelled = await job_client.cancel(job.job_id)
    await finish(arq_redis, job.job_id, success=True)
    after = await job_client.status(job.job_id)
    assert (after.status, after.result, after.finished_at) == (
        JobState.CANCELLED,
        None,
        cancelled.finished_at,
    )
    assert isinstance(after.finished_at, datetime) and after.finished_at.tzinfo is UTC


async def test_cancel_while_a_failed_attempt_is_being_requeued_cancels_at_once(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    # the failed attempt's bookkeeping marked the job retrying; ARQ has not released its lease yet
    job = await job_client.enqueue(noop, NoopInput(value=1))
    record = Keys("unit").record(job.job_id)
    await arq_redis.hset(
        record, mapping=retrying_fields(now_ms() + 30_000, RecordError(type="E", message="m"))
    )  # type: ignore[misc]
    await arq_redis.set(Keys.arq_in_progress(job.job_id), b"1")
    cancelled = await job_client.cancel(job.job_id)
    assert cancelled.status is JobState.CANCELLED
    assert await arq_redis.exists(Keys.arq_job(job.job_id)) == 0
    assert await arq_redis.zscore(QUEUE, job.job_id) is None
    # a worker that had already read the job stops when its attempt starts
    assert await arq_redis.hexists(record, "cancel_requested") == 1  # type: ignore[misc]


async def test_a_cancelled_waiting_job_keeps_its_record_for_the_result_ttl(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1), delay=31_000_000)  # ~1 year ahead
    await job_client.cancel(job.job_id)
    ttl = await arq_redis.pttl(Keys("unit").record(job.job_id))
    assert job_client.settings.result_ttl_s * 1000 - 5_000 < ttl <= job_client.settings.result_ttl_s * 1000
