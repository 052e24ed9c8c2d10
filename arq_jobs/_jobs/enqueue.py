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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio.client import Pipeline

from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import Transition
from arq_jobs._keys import Keys
from arq_jobs._scripts.script import Arg, load_script

ENQUEUE_SCRIPT = load_script("enqueue-4.lua")
IF_STORED_SCRIPT = load_script("if-job-stored-1.lua")


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
        record: list[Arg] = []
        for name, value in self.record.items():
            record += [name, value]
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
            transition=self.entered.args(settings),  # sets no fields itself: 11 values
            record_fields=record,
        )
        script_keys = ENQUEUE_SCRIPT.keys(
            arq_job=Keys.arq_job(self.job_id),
            queue=self.queue_key,
            record=keys.record(self.job_id),
            events=keys.events(self.job_id),
        )
        return script_keys, args


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
