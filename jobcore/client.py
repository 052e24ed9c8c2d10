"""Enqueue jobs and read their status: the one client the API (and later the CLI) builds on."""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from arq.connections import ArqRedis
from arq.jobs import SerializationError, serialize_job

from jobcore.config import Settings
from jobcore.errors import InvalidScheduleError, JobNotFoundError, TaskInputError, UnknownTaskError
from jobcore.keys import Keys
from jobcore.records import JobRecord, record_ttl_ms
from jobcore.registry import InputT, Task, TaskRegistry
from jobcore.serializer import dumps, loads
from jobcore.states import JobState
from jobcore.status import JobStatus, build_status, ms_to_datetime


@dataclass(frozen=True, slots=True)
class Enqueued:
    """A job that was accepted: it is in Redis and will run."""

    job_id: str
    task: str
    status: JobState
    scheduled_for: datetime | None


def now_ms() -> int:
    return int(time.time() * 1000)


MAX_DELAY_S = 10 * 365 * 86_400


def run_time_ms(now: int, delay: float | timedelta | None, run_at: datetime | None) -> int | None:
    """When a delayed job should run, in epoch ms; None to run it now (no delay, or a time already
    past). Refuses both at once, a negative or non-finite delay, a naive run_at, and anything more
    than MAX_DELAY_S ahead."""
    if delay is not None and run_at is not None:
        raise InvalidScheduleError("give either delay or run_at, not both", ["delay", "run_at"])
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    if delay is not None:
        if not (math.isfinite(delay) and 0 <= delay <= MAX_DELAY_S):
            raise InvalidScheduleError(
                f"delay must be a number of seconds from 0 to {MAX_DELAY_S}", ["delay"]
            )
        at = now + round(delay * 1000)
    elif run_at is not None:
        if run_at.tzinfo is None or run_at.utcoffset() is None:
            raise InvalidScheduleError("run_at must include a timezone", ["run_at"])
        at = round(run_at.timestamp() * 1000)
        if at > now + MAX_DELAY_S * 1000:
            raise InvalidScheduleError(f"run_at must be at most {MAX_DELAY_S} seconds ahead", ["run_at"])
    else:
        return None
    return at if at > now else None


class JobClient:
    """Enqueues typed jobs and reads their status, on the API's pooled ArqRedis."""

    def __init__(self, redis: ArqRedis, settings: Settings, registry: TaskRegistry) -> None:
        self.redis = redis
        self.settings = settings
        self.registry = registry
        self.keys = Keys(settings.key_prefix)

    async def enqueue(
        self,
        task: Task[InputT, Any],
        data: InputT,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
    ) -> Enqueued:
        """Put a job for `task` on its queue; it runs after `delay` seconds or at `run_at`."""
        if self.registry.get(task.name) is not task:
            raise UnknownTaskError(task.name)
        if not isinstance(data, task.input_model):
            data = task.parse_input(data)
        now = now_ms()
        scheduled = run_time_ms(now, delay, run_at)
        run_at_ms = now if scheduled is None else scheduled
        job_id = uuid.uuid4().hex
        queue = task.queue_for(self.settings)
        record = JobRecord(
            task=task.name,
            queue=queue,
            enqueued_ms=now,
            scheduled_ms=scheduled,
            max_attempts=task.max_attempts,
        )
        try:
            job = serialize_job(task.name, (data.model_dump(mode="json"),), {}, None, now, serializer=dumps)
        except SerializationError as error:
            reason = f"cannot be stored as JSON ({error.__cause__ or error})"
            raise TaskInputError(task.name, [{"loc": [], "msg": reason, "type": "json_unstorable"}]) from None
        accepted = Enqueued(
            job_id,
            task.name,
            JobState.PENDING if scheduled is None else JobState.SCHEDULED,
            ms_to_datetime(scheduled),
        )
        expires_ms = run_at_ms - now + self.settings.job_expires_s * 1000
        record_ttl = record_ttl_ms(expires_ms, task.timeout_for(self.settings), self.settings.result_ttl_s)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.psetex(Keys.arq_job(job_id), expires_ms, job)
            pipe.zadd(self.keys.queue(queue), {job_id: run_at_ms})
            pipe.hset(self.keys.record(job_id), mapping=record.to_hash())
            pipe.pexpire(self.keys.record(job_id), record_ttl)
            await pipe.execute()
        return accepted

    async def enqueue_payload(
        self,
        task_name: str,
        payload: Any,
        *,
        delay: float | timedelta | None = None,
        run_at: datetime | None = None,
    ) -> Enqueued:
        """Enqueue by task name with an unvalidated payload (dict or JSON-able data)."""
        task = self.registry.get(task_name)
        return await self.enqueue(task, task.parse_input(payload), delay=delay, run_at=run_at)

    async def status(self, job_id: str) -> JobStatus:
        """Everything known about a job; raises JobNotFoundError for an unknown or expired id."""
        # MULTI/EXEC: one consistent snapshot, even while ARQ finishes the job between our reads
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.keys.record(job_id))
            pipe.get(Keys.arq_result(job_id))
            pipe.exists(Keys.arq_in_progress(job_id))
            pipe.exists(Keys.arq_job(job_id))
            raw_record, raw_result, in_progress, queued = await pipe.execute()
        status = build_status(
            job_id,
            JobRecord.from_hash(raw_record),
            _read_result(raw_result),
            in_progress=bool(in_progress),
            queued=bool(queued),
            now_ms=now_ms(),
        )
        if status is None:
            raise JobNotFoundError(job_id)
        return status


def _read_result(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        result = loads(raw)
    except ValueError:
        return {"s": False, "r": "the stored result is not JSON; it was not read"}
    return result if isinstance(result, dict) else None
