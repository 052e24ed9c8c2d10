from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from arq.connections import ArqRedis
from arq.jobs import deserialize_job, serialize_result
from pydantic import Field, SecretStr

from arq_jobs._client import JobClient
from arq_jobs._clock import ms_to_datetime, now_ms
from arq_jobs._config import Settings
from arq_jobs._errors import (
    InvalidScheduleError,
    JobNotFoundError,
    TaskInputError,
    UnknownQueueError,
    UnknownTaskError,
)
from arq_jobs._jobs.states import JobState
from arq_jobs._keys import Keys
from arq_jobs._serializer import dumps, loads
from arq_jobs._tasks.context import JobContext
from arq_jobs._tasks.registry import TaskInput, TaskRegistry, task
from arq_jobs._worker_registry import WorkerInfo, WorkerTotals
from workers.tasks.noop import NoopInput, noop
from workers.tasks.reports import ReportInput, generate_report

from .conftest import make_settings
from .test_registry import In, double


async def test_enqueue_writes_arq_job_queue_entry_and_record(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    before = now_ms()
    job = await job_client.enqueue(noop, NoopInput(value={"a": 1}))
    after = now_ms()
    assert job.status is JobState.PENDING and job.task == "noop" and job.scheduled_for is None

    raw = await arq_redis.get(Keys.arq_job(job.job_id))
    assert raw is not None
    definition = deserialize_job(raw, deserializer=loads)
    assert definition.function == "noop"
    assert list(definition.args) == [{"value": {"a": 1}}]
    assert definition.kwargs == {}
    assert loads(raw)["f"] == "noop"  # plain JSON, readable without arq

    score = await arq_redis.zscore("unit:queue:default", job.job_id)
    assert score is not None and before <= score <= after
    record = await arq_redis.hgetall(f"unit:job:{job.job_id}")
    assert record[b"task"] == b"noop" and record[b"queue"] == b"default" and record[b"max_attempts"] == b"3"
    assert b"scheduled_for" not in record
    job_ttl = await arq_redis.pttl(Keys.arq_job(job.job_id))
    record_ttl = await arq_redis.pttl(f"unit:job:{job.job_id}")
    assert 86_000_000 < job_ttl <= 86_400_000
    assert record_ttl > job_ttl  # the record outlives the job so the status stays readable


async def test_delay_schedules_the_job(job_client: JobClient, arq_redis: ArqRedis) -> None:
    before = now_ms()
    job = await job_client.enqueue(noop, NoopInput(), delay=60)
    assert job.status is JobState.SCHEDULED
    score = await arq_redis.zscore("unit:queue:default", job.job_id)
    assert score is not None and before + 60_000 <= score <= now_ms() + 60_000
    status = await job_client.status(job.job_id)
    assert status.status is JobState.SCHEDULED
    assert status.scheduled_for == job.scheduled_for


async def test_run_at_and_timedelta(job_client: JobClient, arq_redis: ArqRedis) -> None:
    at = (datetime.now(UTC) + timedelta(days=100)).replace(microsecond=0)
    job = await job_client.enqueue(noop, NoopInput(), run_at=at)
    assert job.scheduled_for == at
    assert await arq_redis.zscore("unit:queue:default", job.job_id) == at.timestamp() * 1000
    soon = await job_client.enqueue(noop, NoopInput(), delay=timedelta(minutes=1))
    assert soon.status is JobState.SCHEDULED


@pytest.mark.parametrize(
    "when",
    [
        {"run_at": datetime(2020, 1, 1, tzinfo=UTC)},
        {"run_at": datetime(1970, 1, 1, tzinfo=UTC)},  # score 0 would never be claimed by ARQ
        {"run_at": datetime(1, 1, 1, tzinfo=UTC)},
        {"delay": 0},
    ],
)
async def test_a_time_already_past_runs_now(job_client: JobClient, arq_redis: ArqRedis, when: dict) -> None:
    before = now_ms()
    job = await job_client.enqueue(noop, NoopInput(), **when)
    assert (job.status, job.scheduled_for) == (JobState.PENDING, None)
    score = await arq_redis.zscore("unit:queue:default", job.job_id)
    assert score is not None and score >= before
    status = await job_client.status(job.job_id)
    assert (status.status, status.scheduled_for) == (JobState.PENDING, None)


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"delay": 1, "run_at": datetime(2031, 1, 1, tzinfo=UTC)}, ["delay", "run_at"]),
        ({"delay": -1}, ["delay"]),
        ({"delay": float("nan")}, ["delay"]),
        ({"delay": float("inf")}, ["delay"]),
        ({"delay": timedelta(days=365 * 11)}, ["delay"]),
        ({"delay": 365 * 86_400 + 1}, ["delay"]),  # JOBS_MAX_SCHEDULE_AHEAD_S: 365 days by default
        ({"run_at": datetime.now(UTC) + timedelta(days=366)}, ["run_at"]),
        ({"run_at": datetime(9999, 12, 31, 23, 59, tzinfo=UTC)}, ["run_at"]),
        ({"run_at": datetime(2031, 1, 1)}, ["run_at"]),
    ],
)
async def test_bad_schedules_are_refused(
    job_client: JobClient, arq_redis: ArqRedis, kwargs: dict, fields: list[str]
) -> None:
    with pytest.raises(InvalidScheduleError) as refused:
        await job_client.enqueue(noop, NoopInput(), **kwargs)
    assert refused.value.fields == fields
    assert await arq_redis.zcard("unit:queue:default") == 0


async def test_how_far_ahead_is_the_setting(arq_redis: ArqRedis, registry: TaskRegistry) -> None:
    client = JobClient(arq_redis, make_settings(max_schedule_ahead_s=60), registry)
    assert (await client.enqueue(noop, NoopInput(), delay=60)).status is JobState.SCHEDULED
    in_a_minute = datetime.now(UTC) + timedelta(seconds=59)
    assert (await client.enqueue(noop, NoopInput(), run_at=in_a_minute)).status is JobState.SCHEDULED
    with pytest.raises(
        InvalidScheduleError, match=r"^delay must be a number of seconds from 0 to 60 \(JOBS_MAX"
    ):
        await client.enqueue(noop, NoopInput(), delay=60.5)
    with pytest.raises(InvalidScheduleError, match=r"^run_at must be at most 60 seconds ahead \(JOBS_MAX"):
        await client.enqueue(noop, NoopInput(), run_at=datetime.now(UTC) + timedelta(seconds=62))
    assert await arq_redis.zcard("unit:queue:default") == 2


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (10**30, "Integer exceeds 64-bit range"),
        ("\ud800", "str is not valid UTF-8: surrogates not allowed"),
    ],
)
async def test_input_json_cannot_carry_is_refused(
    job_client: JobClient, arq_redis: ArqRedis, value: object, reason: str
) -> None:
    with pytest.raises(TaskInputError) as refused:
        await job_client.enqueue(noop, NoopInput(value=value))  # type: ignore[arg-type]
    assert str(refused.value) == f"invalid input for task 'noop': (body): cannot be stored as JSON ({reason})"
    assert await arq_redis.zcard("unit:queue:default") == 0


def test_nan_and_infinity_are_refused_by_task_inputs() -> None:
    with pytest.raises(ValueError, match="Input should be a finite number"):
        NoopInput(value=[1.0, float("nan")])


async def test_unregistered_task_is_refused(job_client: JobClient) -> None:
    with pytest.raises(UnknownTaskError):
        await job_client.enqueue(double, In(n=1))


async def test_enqueue_payload_validates_by_name(job_client: JobClient) -> None:
    job = await job_client.enqueue_payload("generate_report", {"rows": 5})
    assert job.task == "generate_report"
    with pytest.raises(TaskInputError, match="rows: Input should be greater than or equal to 1"):
        await job_client.enqueue_payload("generate_report", {"rows": 0})
    with pytest.raises(UnknownTaskError):
        await job_client.enqueue_payload("nope", {})


async def test_status_of_unknown_job_is_not_found(job_client: JobClient) -> None:
    with pytest.raises(JobNotFoundError) as missing:
        await job_client.status("0" * 32)
    assert missing.value.details() == {"job_id": "0" * 32}


async def test_status_follows_the_job_through_running_to_succeeded(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(generate_report, ReportInput(rows=3))
    pending = await job_client.status(job.job_id)
    assert pending.status is JobState.PENDING and pending.attempt == 0 and pending.is_terminal is False
    assert pending.started_at is None and pending.progress is None

    started = now_ms()
    await arq_redis.set(Keys.arq_in_progress(job.job_id), b"1")
    await arq_redis.hset(f"unit:job:{job.job_id}", mapping={"attempt": 1, "started_at": started})
    running = await job_client.status(job.job_id)
    assert running.status is JobState.RUNNING and running.attempt == 1
    assert running.started_at == datetime.fromtimestamp(started / 1000, tz=UTC)

    result = serialize_result(
        "generate_report", ({"rows": 3},), {}, 1, 0, True, {"report_id": job.job_id}, started, started + 50,
        "ref", "unit:queue:default", job.job_id, serializer=dumps,
    )  # fmt: skip
    assert result is not None
    async with arq_redis.pipeline(transaction=True) as pipe:
        pipe.delete(Keys.arq_in_progress(job.job_id), Keys.arq_job(job.job_id))
        pipe.set(Keys.arq_result(job.job_id), result)
        await pipe.execute()
    done = await job_client.status(job.job_id)
    assert done.status is JobState.SUCCEEDED and done.is_terminal is True
    assert done.result == {"report_id": job.job_id}
    assert done.error is None
    assert done.finished_at == datetime.fromtimestamp((started + 50) / 1000, tz=UTC)


async def test_failed_job_shows_readable_error(job_client: JobClient, arq_redis: ArqRedis) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    result = serialize_result(
        "noop", (), {}, 1, 0, False, RuntimeError("disk full"), 1, 2, "ref", "q", job.job_id, serializer=dumps
    )
    assert result is not None
    await arq_redis.set(Keys.arq_result(job.job_id), result)
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED
    assert status.result is None
    assert status.error is not None
    assert (status.error.type, status.error.message) == ("RuntimeError", "disk full")


async def test_unreadable_result_is_reported_not_raised(job_client: JobClient, arq_redis: ArqRedis) -> None:
    job = await job_client.enqueue(noop, NoopInput())
    await arq_redis.set(Keys.arq_result(job.job_id), b"\x80\x04\x95pickled")
    status = await job_client.status(job.job_id)
    assert status.status is JobState.FAILED
    assert (
        status.error is not None and status.error.message == "the stored result is not JSON; it was not read"
    )


async def test_arq_keys_without_our_record_are_not_our_job(
    job_client: JobClient, arq_redis: ArqRedis, settings: Settings, registry: TaskRegistry
) -> None:
    # ARQ's keys are not under our prefix: another deployment's (or plain ARQ's) job must not show
    result = serialize_result(
        "noop",
        (),
        {},
        2,
        1000,
        True,
        {"value": "secret"},
        1000,
        2000,
        "r",
        "q",
        "plain-arq",
        serializer=dumps,
    )
    assert result is not None
    await arq_redis.set(Keys.arq_result("plain-arq"), result)
    await arq_redis.set(Keys.arq_job("plain-queued"), b"{}")
    for job_id in ("plain-arq", "plain-queued"):
        with pytest.raises(JobNotFoundError):
            await job_client.status(job_id)


async def test_job_whose_data_expired_while_waiting_is_failed(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1))
    await arq_redis.delete(Keys.arq_job(job.job_id))
    status = await job_client.status(job.job_id)
    assert (status.status, status.is_terminal, status.attempt) == (JobState.FAILED, True, 0)
    assert status.error is not None
    assert (status.error.type, status.error.message) == (
        "JobExpired",
        "the job's data expired before a worker ran it (JOBS_JOB_EXPIRES_S)",
    )


class Mail(TaskInput):
    from_: str = Field(alias="from")


class Secret(TaskInput):
    token: SecretStr


@task()
async def mail(ctx: JobContext, data: Mail) -> None:
    """Send a mail."""


@task()
async def secret(ctx: JobContext, data: Secret) -> None:
    """Use a secret."""


async def test_aliased_input_round_trips_and_secrets_are_refused(
    arq_redis: ArqRedis, settings: Settings
) -> None:
    client = JobClient(arq_redis, settings, TaskRegistry([mail, secret]))
    job = await client.enqueue(mail, Mail.model_validate({"from": "a@example.com"}))
    raw = await arq_redis.get(Keys.arq_job(job.job_id))
    assert raw is not None and list(deserialize_job(raw, deserializer=loads).args) == [
        {"from": "a@example.com"}
    ]
    with pytest.raises(TaskInputError) as refused:
        await client.enqueue(secret, Secret(token=SecretStr("s3cret")))
    assert refused.value.errors == [
        {
            "loc": [],
            "msg": "does not survive being stored as JSON (a SecretStr or excluded field?)",
            "type": "json_round_trip",
        }
    ]


async def test_a_job_can_be_sent_to_another_configured_queue(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    urgent = await job_client.enqueue(noop, NoopInput(value=1), queue="high")
    later = await job_client.enqueue_payload("generate_report", {"rows": 5}, queue="low")
    plain = await job_client.enqueue(noop, NoopInput(value=2))
    for job, queue in ((urgent, "high"), (later, "low"), (plain, "default")):
        assert await arq_redis.zscore(f"unit:queue:{queue}", job.job_id) is not None
        assert (await job_client.status(job.job_id)).queue == queue
    assert await arq_redis.zcard("unit:queue:default") == 1
    page = await job_client.jobs(queue="high")
    assert [(item.job_id, item.queue) for item in page.items] == [(urgent.job_id, "high")]
    counts = {q.name: q.pending for q in await job_client.queues()}
    assert counts == {"high": 1, "default": 1, "low": 1}


async def test_an_unknown_queue_is_refused_naming_the_configured_ones(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    for attempt in (
        job_client.enqueue(noop, NoopInput(), queue="urgent"),
        job_client.enqueue_payload("noop", {"value": float("nan")}, queue="urgent"),  # before the input
    ):
        with pytest.raises(UnknownQueueError) as refused:
            await attempt
        assert (
            str(refused.value) == "no queue named 'urgent' is configured; the queues are high, default, low"
        )
        assert refused.value.details() == {
            "queue": "urgent",
            "queues": ["high", "default", "low"],
            "task": "noop",
        }
    assert await arq_redis.dbsize() == 0


def test_queue_names_are_the_configured_ones_then_those_live_workers_serve(job_client: JobClient) -> None:
    assert job_client.queue_names() == ["high", "default", "low"]
    beat = {
        "worker_id": "h:1:a",
        "host": "h",
        "pid": 1,
        "concurrency": 1,
        "started_at": datetime(2026, 1, 1, tzinfo=UTC),
        "running": 0,
        "running_jobs": [],
        "totals": WorkerTotals(),
        "registry_version": "x",
        "version": "0",
        "last_seen": datetime(2026, 1, 1, tzinfo=UTC),
        "last_seen_age_s": 0.1,
    }
    workers = [
        WorkerInfo(**beat, queues=["reports"], state="alive"),
        WorkerInfo(**beat, queues=["archive"], state="alive"),
        WorkerInfo(**beat, queues=["gone"], state="stale"),
    ]
    assert job_client.queue_names(workers) == ["high", "default", "low", "archive", "reports"]


async def test_a_given_job_id_is_used_once_and_a_repeat_stores_nothing(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    first = await job_client.enqueue(
        noop, NoopInput(value=1), job_id="cron-nightly-1800000000000", schedule="nightly"
    )
    assert (first.job_id, first.replayed, first.status) == (
        "cron-nightly-1800000000000",
        False,
        JobState.PENDING,
    )
    again = await job_client.enqueue(noop, NoopInput(value=2), job_id=first.job_id, workflow="wf:0:0")
    assert (again.job_id, again.replayed) == (first.job_id, True)
    # the first job is untouched: its input, its record, one entry in the queue, one event
    raw = await arq_redis.get(Keys.arq_job(first.job_id))
    assert raw is not None and list(deserialize_job(raw, deserializer=loads).args) == [{"value": 1}]
    status = await job_client.status(first.job_id)
    assert (status.schedule, status.workflow_id, status.status) == ("nightly", None, JobState.PENDING)
    assert await arq_redis.zcard("unit:queue:default") == 1
    assert await arq_redis.xlen(f"unit:events:{first.job_id}") == 1


async def test_a_workflow_step_job_shows_its_workflow(job_client: JobClient) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1), job_id="step-1", workflow="wf123:2:5")
    status = await job_client.status(job.job_id)
    assert (status.workflow_id, status.schedule, status.throttled) == ("wf123", None, None)


async def test_a_given_job_id_and_an_idempotency_key_are_not_both_taken(job_client: JobClient) -> None:
    with pytest.raises(ValueError, match="not both"):
        await job_client.enqueue(noop, NoopInput(value=1), job_id="x", idempotency_key="k")


async def test_a_throttled_waiting_job_says_why_and_until_when(
    job_client: JobClient, arq_redis: ArqRedis
) -> None:
    job = await job_client.enqueue(noop, NoopInput(value=1))
    until = now_ms() + 5_000
    await arq_redis.hset(f"unit:job:{job.job_id}", mapping={"throttle": "rate", "throttled_until": until})  # type: ignore[misc]
    status = await job_client.status(job.job_id)
    assert status.status is JobState.PENDING and status.attempt == 0
    assert status.throttled is not None
    assert (status.throttled.reason, status.throttled.next_try_at) == ("rate", ms_to_datetime(until))
