"""What happens to a job after an attempt fails: another attempt after a backoff, or the dead-letter
store; and the bookkeeping of a cancelled job. Also dead-letters the failures ARQ handles before any
task code or hook runs (expired job data, unknown function, undecodable job, too many tries)."""

from __future__ import annotations

from typing import Any

from arq.worker import Retry

from arq_jobs._clock import now_ms
from arq_jobs._deadletters import (
    DeadLetterError,
    DeadLetterStore,
    FailureReason,
    build_dead_letter,
    error_from_exception,
)
from arq_jobs._errors import JobCancelledError
from arq_jobs._jobs.records import (
    CANCEL_REQUESTED,
    DEAD_LETTERED,
    FINISHED_AT,
    JobError,
    JobRecord,
    cancelled_fields,
    record_ttl_ms,
    retrying_fields,
)
from arq_jobs._jobs.states import JobState
from arq_jobs._jobs.transitions import AttemptTimes, Phase, Transition
from arq_jobs._keys import Keys
from arq_jobs._logs import get_logger
from arq_jobs._serializer import EXCEPTION_KEY, encode_exception, exception_message, loads
from arq_jobs._tasks.context import Resources
from arq_jobs._tasks.registry import Task
from arq_jobs._worker.runtime import Runtime

log = get_logger(__name__)


def store(resources: Resources) -> DeadLetterStore:
    return DeadLetterStore(resources.redis, resources.keys, resources.settings.dead_letter_ttl_s)


async def schedule_retry(
    resources: Resources,
    task: Task[Any, Any],
    job_id: str,
    attempt: int,
    error: BaseException,
    *,
    shown: BaseException | None = None,
    times: AttemptTimes | None = None,
) -> Retry | JobCancelledError:
    """Mark the job `retrying` until its next attempt and return the ARQ `Retry` that re-queues it
    after the policy's (jittered) backoff for `error`; or, when the job was cancelled meanwhile, mark
    it cancelled and return the JobCancelledError that ends it. The record shows `shown` (`error`
    with the job's secret values scrubbed, arq_jobs._secrets.scrub_exception) when given."""
    delay_s = task.retry.delay_s(attempt, error)
    now = now_ms()
    delay_ms = round(delay_s * 1000)
    settings = resources.settings
    recorded = error if shown is None else shown
    info = JobError(type=type(recorded).__name__, message=exception_message(recorded))
    record = resources.keys.record(job_id)
    async with resources.redis.pipeline(transaction=True) as pipe:
        # the job's data must outlive the wait (ARQ set its TTL at enqueue), and the record the data
        job_ttl_ms = delay_ms + settings.job_expires_s * 1000
        pipe.pexpire(Keys.arq_job(job_id), job_ttl_ms)
        pipe.pexpire(record, record_ttl_ms(job_ttl_ms, task.timeout_for(settings), settings.longest_keep_s))
        retrying = Transition(
            job_id,
            JobState.RETRYING,
            Phase.QUEUED,
            now,
            fields=retrying_fields(now + delay_ms, info),
            times=times,
        )
        retrying.queue_on(pipe, settings)
        pipe.hexists(record, CANCEL_REQUESTED)
        *_, cancel_requested = await pipe.execute()
    if cancel_requested:
        await mark_cancelled(resources, job_id)
        return JobCancelledError("cancelled while its attempt was failing")
    return Retry(defer=delay_s)


async def dead_letter(
    runtime: Runtime,
    job_id: str,
    *,
    task: str,
    payload: Any,
    error: DeadLetterError,
    reason: str,
    attempts: int,
    times: AttemptTimes | None = None,
) -> bool:
    """Record a job that failed for good in the dead-letter store (flag its record, enter `failed`,
    count it, with the `times` of its last attempt when it ran); False, writing nothing, for a job
    that was cancelled meanwhile."""
    resources = runtime.resources
    raw = await resources.redis.hgetall(resources.keys.record(job_id))  # type: ignore[misc]
    record = JobRecord.from_hash(raw)
    if record is not None and record.mark is JobState.CANCELLED:
        return False  # cancelled jobs are not failures
    letter = build_dead_letter(
        job_id,
        record,
        task=task,
        payload=payload,
        error=error,
        reason=reason,
        attempts=attempts,
        failed_ms=now_ms(),
        # the worker of the last attempt (not this one, when it only found that attempt's worker dead)
        worker=record.worker if record and record.worker else resources.worker_id,
    )
    failed_ms = round(letter.failed_at.timestamp() * 1000)
    failed = Transition(
        job_id,
        JobState.FAILED,
        Phase.FAILED,
        failed_ms,
        fields={DEAD_LETTERED: "1", FINISHED_AT: failed_ms},
        extra={"s": False, "r": {EXCEPTION_KEY: error.model_dump(exclude={"traceback"})}, "ft": failed_ms},
        times=times,
    )
    async with resources.redis.pipeline(transaction=True) as pipe:
        store(resources).add(pipe, letter, failed_ms)
        failed.queue_on(pipe, resources.settings)  # (a job without a record gets none)
        await pipe.execute()
    runtime.metrics.dead_lettered.labels(letter.task, letter.queue or resources.settings.queue_name).inc()
    return True


def exception_error(error: BaseException) -> DeadLetterError:
    return error_from_exception(encode_exception(error))


async def mark_cancelled(resources: Resources, job_id: str, times: AttemptTimes | None = None) -> None:
    """End the job cancelled (`times`: of the attempt it stopped, when one ran)."""
    now = now_ms()
    cancelled = Transition(
        job_id, JobState.CANCELLED, Phase.CANCELLED, now, fields=cancelled_fields(now), times=times
    )
    await cancelled.apply(resources.redis, resources.settings)


def refusal_reason(error: DeadLetterError) -> str:
    """Classify a failure ARQ reported before running the task, from its exception."""
    if error.message == "job expired":
        return FailureReason.EXPIRED
    if error.message.startswith("function ") and error.message.endswith(" not found"):
        return FailureReason.UNKNOWN_TASK
    if error.type in ("SerializationError", "DeserializationError"):
        return FailureReason.UNREADABLE
    if "retries exceeded" in error.message:
        return FailureReason.EXHAUSTED
    return FailureReason.REFUSED


async def dead_letter_refused(runtime: Runtime, job_id: str, result_data: bytes | None) -> None:
    """Dead-letter a job ARQ failed before running it, from the result ARQ is about to store and
    the job's data (read now, before ARQ deletes it)."""
    resources = runtime.resources
    raw_job = await resources.redis.get(Keys.arq_job(job_id))
    result: dict[str, Any] = {}
    if result_data is not None:
        try:
            decoded = loads(result_data)
            result = decoded if isinstance(decoded, dict) else {}
        except ValueError:
            result = {}
    error = error_from_exception(result.get("r", "ARQ failed the job before running it"))
    args = result.get("a")
    payload: Any = args[0] if isinstance(args, list) and args else None
    if payload is None and raw_job is not None:
        payload = raw_job_input(raw_job)
    task = str(result.get("f") or "<unknown>")
    reason = refusal_reason(error)
    written = await dead_letter(
        runtime,
        job_id,
        task=task,
        payload=payload,
        error=error,
        reason=reason,
        attempts=int(result.get("t") or 0),
    )
    if written:
        log.info("job.failed", job_id=job_id, task=task, reason=reason, error_type=error.type)


def raw_job_input(raw: bytes) -> Any:
    """The input of a stored ARQ job, or its text when it cannot be decoded."""
    try:
        job = loads(raw)
        args = job.get("a") if isinstance(job, dict) else None
        return args[0] if isinstance(args, list) and args else None
    except ValueError:
        return raw.decode("utf-8", errors="replace")[:10_000]
