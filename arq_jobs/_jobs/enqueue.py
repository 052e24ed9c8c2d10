"""Storing an enqueued job as one script: ARQ's job key and queue entry, our record, the `pending` or
`scheduled` transition (indexes, first event) and the wake-up message for the queue's workers.

One script instead of a MULTI of six commands: atomic all the same, smaller to send (EVALSHA), and,
being a single call, it can share a pipeline with other requests' enqueues (`arq_jobs._scripts.batch`).

Back-pressure (JOBS_QUEUE_MAX_PENDING) is checked inside the script, so it holds however many enqueues
run at once: a queue holding `max_pending` jobs waiting to start (pending, scheduled or retrying — its
`queued` phase index; running jobs do not count) stores nothing more and answers -<that count>. Without
a limit nothing is counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import Transition
from arq_jobs._keys import Keys
from arq_jobs._scripts.script import Arg, load_script

ENQUEUE_SCRIPT = load_script("enqueue-4.lua")


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
