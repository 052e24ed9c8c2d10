"""State transitions: every change of a job's state goes through one Lua function
(`arq_jobs/_scripts/lua/includes/transition.lua`, which the enqueue, begin, finish, cancel and
give-back scripts include) that updates its record, the listing indexes and the job's event stream
together, atomically.

Indexes (sorted sets of job ids scored by the job's run time, ms — its scheduled time, else when it
was enqueued): `all`, `queue:<q>`, `task:<t>` (written once, at enqueue), and one per *phase* —
where the job is in its life as our writes know it — overall and per queue:

    queued (pending, scheduled or retrying: in ARQ's queue) · running · succeeded · failed · cancelled

A job is in exactly one phase index (its record's `phase` field says which). Pending vs scheduled vs
retrying depend on the clock, so they share the `queued` phase; `retry-waits:<q>` (scored by when
the backoff ends) tells retrying jobs apart. One write in 16 trims entries whose run time is older than
the retention horizon, and listings skip (and drop) entries whose record has expired.

A transition that ends an attempt or a job (succeeded, failed, retrying, cancelled) also adds to the
statistics of the job's task on its queue (arq_jobs._stats), with the attempt's `times` when it ran.

A transition that ends the job (succeeded, failed, cancelled) gives its record the outcome's retention
(`Settings.keep_s`), its event stream `events_keep_s`, and with `Settings.keep_count` deletes the
oldest jobs of that queue and outcome beyond the count.

Each transition appends an event to the job's stream (`XADD ... MAXLEN ~ events_maxlen`): `event`
(the state entered, or `progress`), `extra` (the result or error of a finished job, JSON) and a
snapshot of the record's fields, from which a reader rebuilds the job status as of that event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from arq_jobs._config import Settings
from arq_jobs._jobs.records import RECORD_MARGIN_S
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._scripts.script import Arg, load_script
from arq_jobs._serializer import dumps


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDED = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED})
PROGRESS_EVENT = "progress"

TRANSITION_SCRIPT = load_script("transition-2.lua")


@cache
def derived_prefixes(key_prefix: str) -> tuple[str, str, str]:
    """What the transition puts an index's kind, a queue's name and a statistics key's unit after
    (Keys.index, Keys.retry_waits, Keys.stats_prefix)."""
    keys = Keys(key_prefix)
    return keys.index(""), keys.retry_waits(""), keys.stats_prefix()


def index_horizon_ms(settings: Settings) -> int:
    """How long index entries are kept after the job's run time: as long as a record can live."""
    return round(
        (settings.job_expires_s + settings.longest_keep_s + settings.job_timeout_s + RECORD_MARGIN_S) * 1000
    )


@dataclass(frozen=True, slots=True)
class AttemptTimes:
    """An attempt that ran, as its ending transition counts it in the statistics (arq_jobs._stats):
    how long it waited to start after it was due, and how long it ran (ms)."""

    wait_ms: int
    run_ms: int


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a job: the event it emits, the phase it enters and the record fields it sets."""

    job_id: str
    event: str
    phase: Phase | None = None
    now_ms: int = 0
    fields: dict[str, str | int] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    extra: dict[str, Any] | None = None
    created: bool = False
    times: AttemptTimes | None = None  # the attempt this transition ends, when it ran

    def keep_s(self, settings: Settings) -> int | None:
        """How long the job is kept once this transition ends it (by its outcome); None when it does
        not end the job."""
        return settings.keep_s(self.phase is Phase.SUCCEEDED) if self.phase in ENDED else None

    def keys(self, keys: Keys) -> list[str]:
        return TRANSITION_SCRIPT.keys(record=keys.record(self.job_id), events=keys.events(self.job_id))

    def args(self, settings: Settings) -> list[Arg]:
        """transition-2.lua's ARGV, which the scripts that include the transition take as a group."""
        index_prefix, retry_waits_prefix, stats_prefix = derived_prefixes(settings.key_prefix)
        keep_s = self.keep_s(settings)
        keep_count = (settings.keep_count(self.phase is Phase.SUCCEEDED) or 0) if keep_s is not None else 0
        changes: list[Arg] = [2 * len(self.fields)]
        for name, value in self.fields.items():
            changes += [name, value]
        changes += self.drop
        return TRANSITION_SCRIPT.args(
            index_prefix=index_prefix,
            retry_waits_prefix=retry_waits_prefix,
            job_id=self.job_id,
            event=self.event,
            phase=self.phase.value if self.phase else "",
            now=self.now_ms,
            horizon=index_horizon_ms(settings),
            maxlen=settings.events_maxlen,
            extra=dumps(self.extra).decode() if self.extra is not None else "",
            created="1" if self.created else "0",
            keep="" if keep_s is None else keep_s * 1000,
            events_keep=settings.events_keep_s * 1000,
            keep_count=keep_count,
            stats_prefix=stats_prefix,
            stats_minutes_ttl=settings.stats_minutes_ttl_s * 1000,
            stats_hours_ttl=settings.stats_hours_ttl_s * 1000,
            run_ms="" if self.times is None else max(0, self.times.run_ms),
            wait_ms="" if self.times is None else max(0, self.times.wait_ms),
            changes=changes,
        )

    def queue_on(self, pipe: Pipeline, settings: Settings) -> None:
        """Queue the transition on a (MULTI) pipeline (EVAL: a script missing from the cache would
        fail inside the transaction)."""
        keys = Keys(settings.key_prefix)
        argv = [str(arg) for arg in self.args(settings)]
        pipe.eval(TRANSITION_SCRIPT.source, 2, *self.keys(keys), *argv)

    async def apply(self, redis: Redis, settings: Settings) -> bool:
        """Run the transition now; False when the job has no record (nothing is written then)."""
        keys = Keys(settings.key_prefix)
        return bool(await run_script(redis, TRANSITION_SCRIPT, self.keys(keys), self.args(settings)))
