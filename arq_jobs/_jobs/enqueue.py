"""Storing an enqueued job as one script: ARQ's job key and queue entry, our record, the `pending` or
`scheduled` transition (indexes, first event) and the wake-up message for the queue's workers.

One script instead of a MULTI of six commands: atomic all the same, smaller to send (EVALSHA), and,
being a single call, it can share a pipeline with other requests' enqueues (`arq_jobs._scripts.batch`).

Back-pressure (JOBS_QUEUE_MAX_PENDING) is checked inside the script, so it holds however many enqueues
run at once: a queue holding `max_pending` jobs waiting to start (pending, scheduled or retrying — its
`queued` phase index; running jobs do not count) stores nothing more and answers -<that count>. Without
a limit nothing is counted.

Writes that belong with a job (an Idempotency-Key's claim, the removal of the dead letter a retry
replaces) follow its enqueue in the same MULTI through `if_stored`: done only if the job was stored.

A batch of jobs of one task (`JobClient.enqueue_many`) is one call of another script that stores each
job as the single one does (the same Lua function), all or none, and wakes the queue once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio.client import Pipeline

from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import TRANSITION_SCRIPT, Transition
from arq_jobs._keys import Keys
from arq_jobs._scripts.script import Arg, load_script

ENQUEUE_SCRIPT = load_script("enqueue-4.lua")
BATCH_SCRIPT = load_script("enqueue-batch-1.lua")
IF_STORED_SCRIPT = load_script("if-job-stored-1.lua")

# where the job id is among a transition's arguments: the batch script puts each job's own there
JOB_ID_AT = next(slot.first for slot in TRANSITION_SCRIPT.arg_slots if slot.name == "job_id")


def flat(fields: dict[str, str | int]) -> list[Arg]:
    """A record's fields as HSET takes them: field, value, field, value, ..."""
    return [item for pair in fields.items() for item in pair]


@dataclass(frozen=True, slots=True)
class EnqueueWrite:
    """What one enqueue stores."""

    job_id: str
    queue_key: str
    job: bytes
    expires_ms: int
    run_at_ms: int
    record: dict[str, str | int]
    record_ttl_ms: int
    entered: Transition
    wake: bool
    only_new: bool = False
    max_pending: int = 0  # refuse the job when its queue holds this many waiting jobs; 0: no limit
    waiting_key: str = ""  # with `max_pending`: the queue's `queued` phase index, which counts them

    def call(self, settings: Settings) -> tuple[list[str], list[Arg]]:
        """ENQUEUE_SCRIPT's keys and arguments."""
        keys = Keys(settings.key_prefix)
        args = ENQUEUE_SCRIPT.args(
            job_id=self.job_id,
            job=self.job,
            job_ttl_ms=self.expires_ms,
            run_at=self.run_at_ms,
            record_ttl_ms=self.record_ttl_ms,
            wake_channel=Keys.wake_channel(self.queue_key) if self.wake else "",
            only_new="1" if self.only_new else "0",
            max_pending=self.max_pending,
            waiting=self.waiting_key,
            transition=self.entered.args(settings),  # sets no fields itself: 19 values
            record_fields=flat(self.record),
        )
        script_keys = ENQUEUE_SCRIPT.keys(
            arq_job=Keys.arq_job(self.job_id),
            queue=self.queue_key,
            record=keys.record(self.job_id),
            events=keys.events(self.job_id),
        )
        return script_keys, args


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """What one batch enqueue stores: jobs written as `first` is (the same queue, times, record and
    first transition), each with its own id and serialized job (`jobs`, the first one's included)."""

    first: EnqueueWrite
    jobs: list[tuple[str, bytes]]

    def call(self, settings: Settings) -> tuple[list[str], list[Arg]]:
        """BATCH_SCRIPT's keys and arguments."""
        first, keys = self.first, Keys(settings.key_prefix)
        transition, record = first.entered.args(settings), flat(first.record)
        args = BATCH_SCRIPT.args(
            record_prefix=keys.record(""),
            events_prefix=keys.events(""),
            job_ttl_ms=first.expires_ms,
            run_at=first.run_at_ms,
            record_ttl_ms=first.record_ttl_ms,
            wake_channel=Keys.wake_channel(first.queue_key) if first.wake else "",
            max_pending=first.max_pending,
            waiting=first.waiting_key,
            job_id_at=JOB_ID_AT,
            transition_size=len(transition),
            record_size=len(record),
            transition_record_and_jobs=[*transition, *record, *(item for job in self.jobs for item in job)],
        )
        return BATCH_SCRIPT.keys(queue=first.queue_key), args


def if_stored(
    pipe: Pipeline,
    record: str,
    *,
    set_key: str = "",
    set_value: str | bytes = "",
    set_ttl_ms: int = 0,
    del_key: str = "",
    member: str = "",
    indexes: Sequence[str] = (),
) -> None:
    """Queue on a MULTI pipeline, after an enqueue, writes done only if that enqueue stored its job
    (`record`, the new job's record, exists): SET `set_key`, DEL `del_key`, ZREM `member` from
    `indexes`. A job refused because its queue was full writes nothing (EVAL, as the enqueue's)."""
    keys = IF_STORED_SCRIPT.keys(record=record)
    args = IF_STORED_SCRIPT.args(
        set_key=set_key,
        set_value=set_value,
        set_ttl_ms=set_ttl_ms,
        del_key=del_key,
        member=member,
        indexes=list(indexes),
    )
    pipe.eval(IF_STORED_SCRIPT.source, len(keys), *keys, *args)  # type: ignore[arg-type]
