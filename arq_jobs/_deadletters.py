"""The dead-letter store: jobs that failed for good, kept with their input and error until an
operator retries or deletes them, or the retention (default 30 days) passes.

Each dead letter is one JSON string `<prefix>:dead:<job_id>` (with a TTL of the retention) indexed in
two sorted sets scored by failure time: all dead letters, and one per task. Listing walks an index
newest first with a cursor (failure time + job id), so pages neither skip nor repeat entries while
new ones arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from pydantic import BaseModel, Field, JsonValue, ValidationError
from redis.asyncio.client import Pipeline

from arq_jobs._clock import ms_to_datetime
from arq_jobs._errors import DeadLetterNotFoundError
from arq_jobs._jobs.enqueue import if_stored
from arq_jobs._jobs.paging import walk
from arq_jobs._jobs.records import JobRecord
from arq_jobs._keys import Keys
from arq_jobs._secrets import redact_input
from arq_jobs._serializer import read_exception

if TYPE_CHECKING:
    from arq_jobs._tasks.registry import TaskRegistry


class FailureReason:
    """Why a job was dead-lettered (`DeadLetter.reason`)."""

    PERMANENT = "permanent_error"  # the error is not retried by the task's policy
    EXHAUSTED = "attempts_exhausted"  # the last allowed attempt failed
    EXPIRED = "job_expired"  # the job's data expired before a worker ran it
    UNKNOWN_TASK = "unknown_task"  # no worker function for the job's task
    UNREADABLE = "unreadable_job"  # the stored job could not be decoded
    REFUSED = "refused_by_arq"  # any other failure ARQ reported before running the task


class DeadLetterError(BaseModel):
    type: str
    message: str
    traceback: str | None = None


class DeadLetter(BaseModel):
    """A job that failed for good."""

    job_id: str
    task: str
    queue: str | None
    input: JsonValue = Field(
        description="The job's input as stored (null when it could not be read), its secret values "
        '"***" (all of it when the task is unknown).'
    )
    error: DeadLetterError
    reason: str = Field(description="permanent_error, attempts_exhausted, job_expired, unknown_task, ...")
    attempts: int
    max_attempts: int | None
    enqueued_at: datetime | None
    started_at: datetime | None = Field(description="When the last attempt started.")
    failed_at: datetime
    worker: str | None = Field(description="The worker that ran the last attempt.")
    retry_of: str | None = None
    owner: str | None = Field(default=None, description="The API key that enqueued the job.")


class DeadLetterPage(BaseModel):
    items: list[DeadLetter]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end.")


def error_from_exception(encoded: Any) -> DeadLetterError:
    """A dead letter's error from our serializer's encoding of an exception (or anything else)."""
    stored = read_exception(encoded)
    if stored is None:
        return DeadLetterError(type="Error", message=str(encoded))
    return DeadLetterError(type=stored.type, message=stored.message, traceback=stored.traceback)


def build_dead_letter(
    job_id: str,
    record: JobRecord | None,
    *,
    task: str,
    payload: Any,
    error: DeadLetterError,
    reason: str,
    attempts: int,
    failed_ms: int,
    worker: str | None,
) -> DeadLetter:
    return DeadLetter(
        job_id=job_id,
        task=record.task if record else task,
        queue=record.queue if record else None,
        input=payload,
        error=error,
        reason=reason,
        attempts=attempts,
        max_attempts=record.max_attempts if record else None,
        enqueued_at=ms_to_datetime(record.enqueued_ms) if record else None,
        started_at=ms_to_datetime(record.started_ms) if record else None,
        failed_at=datetime.fromtimestamp(failed_ms / 1000, tz=UTC),
        worker=worker or (record.worker if record else None),
        retry_of=record.retry_of if record else None,
        owner=record.owner if record else None,
    )


class DeadLetterStore:
    """Read and write dead letters on one Redis."""

    def __init__(
        self, redis: ArqRedis, keys: Keys, retention_s: int, registry: TaskRegistry | None = None
    ) -> None:
        """With a `registry`, the dead letters read are shown with their inputs' secrets redacted
        (a task it does not know: the whole input); without, as stored (the worker's view)."""
        self.redis = redis
        self.keys = keys
        self.retention_ms = retention_s * 1000
        self.registry = registry

    def shown(self, letter: DeadLetter) -> DeadLetter:
        if self.registry is None:
            return letter
        return letter.model_copy(update={"input": redact_input(self.registry, letter.task, letter.input)})

    def add(self, pipe: Pipeline, letter: DeadLetter, now_ms: int) -> None:
        """Queue the commands that store `letter` on a MULTI pipeline."""
        score = round(letter.failed_at.timestamp() * 1000)
        pipe.set(self.keys.dead_letter(letter.job_id), letter.model_dump_json(), px=self.retention_ms)
        for index in self.indexes(letter):
            pipe.zadd(index, {letter.job_id: score})
            pipe.zremrangebyscore(index, "-inf", f"({now_ms - self.retention_ms}")
            pipe.pexpire(index, self.retention_ms)  # every entry is stale by then

    def indexes(self, letter: DeadLetter) -> list[str]:
        """The indexes that list `letter`: all, its task's, its queue's, its owner's."""
        found = [self.keys.dead_letters(), self.keys.dead_letters(letter.task)]
        if letter.queue:
            found.append(self.keys.dead_letters_of_queue(letter.queue))
        if letter.owner:
            found.append(self.keys.dead_letters_of_owner(letter.owner))
        return found

    def stored_at(self, letter: DeadLetter) -> tuple[str, list[str]]:
        """`letter`'s key and the indexes that list it: what its removal deletes."""
        return self.keys.dead_letter(letter.job_id), self.indexes(letter)

    def remove_if_retried(self, pipe: Pipeline, letter: DeadLetter, retry_record: str) -> None:
        """Queue, on a MULTI pipeline after the enqueue of `letter`'s retry, the removal of `letter`,
        done only if that enqueue stored its job (`retry_record`, the new job's record, exists): a retry
        refused because its queue was full keeps the dead letter."""
        key, indexes = self.stored_at(letter)
        if_stored(pipe, retry_record, del_key=key, member=letter.job_id, indexes=indexes)

    def remove(self, pipe: Pipeline, letter: DeadLetter) -> None:
        """Queue the commands that delete `letter` on a MULTI pipeline."""
        key, indexes = self.stored_at(letter)
        pipe.delete(key)
        for index in indexes:
            pipe.zrem(index, letter.job_id)

    async def get(self, job_id: str) -> DeadLetter:
        letter = parse(await self.redis.get(self.keys.dead_letter(job_id)))
        if letter is None:
            raise DeadLetterNotFoundError(job_id)
        return self.shown(letter)

    async def delete(self, job_id: str) -> None:
        letter = await self.get(job_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            self.remove(pipe, letter)
            await pipe.execute()

    async def page(
        self, *, limit: int, cursor: str | None, task: str | None, now_ms: int, owner: str | None = None
    ) -> DeadLetterPage:
        """Dead letters newest first: `limit` of them after `cursor`, optionally of one task, and only
        one API key's (`owner`: walked in that key's own index, so a page and its cursor never touch
        another owner's letter)."""
        index = self.keys.dead_letters(task) if owner is None else self.keys.dead_letters_of_owner(owner)
        await self.redis.zremrangebyscore(index, "-inf", f"({now_ms - self.retention_ms}")

        async def load(members: Sequence[str]) -> list[DeadLetter | None]:
            values = await self.redis.mget([self.keys.dead_letter(m) for m in members])
            return [parse(raw) for raw in values]

        def keep(letter: DeadLetter) -> bool:
            return (owner is None or letter.owner == owner) and (task is None or letter.task == task)

        found = await walk(self.redis, index, limit=limit, cursor=cursor, load=load, keep=keep)
        return DeadLetterPage(items=[self.shown(item) for item in found.items], next_cursor=found.next_cursor)


def parse(raw: bytes | None) -> DeadLetter | None:
    if raw is None:
        return None
    try:
        return DeadLetter.model_validate_json(raw)
    except ValidationError:
        return None
