"""State transitions: every change of a job's state goes through one Lua function that updates its
record, the listing indexes and the job's event stream together, atomically.

Indexes (sorted sets of job ids scored by the job's run time, ms — its scheduled time, else when it
was enqueued): `all`, `queue:<q>`, `task:<t>` (written once, at enqueue), and one per *phase* —
where the job is in its life as our writes know it — overall and per queue:

    queued (pending, scheduled or retrying: in ARQ's queue) · running · succeeded · failed · cancelled

A job is in exactly one phase index (its record's `phase` field says which). Pending vs scheduled vs
retrying depend on the clock, so they share the `queued` phase; `retry-waits:<q>` (scored by when
the backoff ends) tells retrying jobs apart. Each write trims entries whose run time is older than the
retention horizon, and listings skip (and drop) entries whose record has expired.

Each transition appends an event to the job's stream (`XADD ... MAXLEN ~ events_maxlen`): `event`
(the state entered, or `progress`), `extra` (the result or error of a finished job, JSON) and a
snapshot of the record's fields, from which a reader rebuilds the job status as of that event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from arq_jobs._config import Settings
from arq_jobs._jobs import records
from arq_jobs._jobs.records import RECORD_MARGIN_S
from arq_jobs._keys import Keys
from arq_jobs._scripts.run import run_script
from arq_jobs._serializer import dumps


class Phase(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


PROGRESS_EVENT = "progress"

# transition(record, stream, prefix, job id, event, phase ('' = unchanged), now ms, horizon ms,
#            maxlen, extra, created ('1' at enqueue), fields to set, fields to delete) -> 0 | 1
TRANSITION_LUA = f"""
local function transition(record, stream, prefix, job_id, event, phase, now, horizon, maxlen, extra,
                          created, fields, drop)
  if redis.call('EXISTS', record) == 0 then return 0 end
  if #fields > 0 then redis.call('HSET', record, unpack(fields)) end
  if #drop > 0 then redis.call('HDEL', record, unpack(drop)) end
  local info = redis.call('HMGET', record, '{records.QUEUE}', '{records.TASK}', '{records.PHASE}',
    '{records.SCHEDULED_FOR}', '{records.ENQUEUED_AT}', '{records.NEXT_ATTEMPT_AT}')
  local queue, task, was = info[1] or '', info[2] or '', info[3]
  local score = info[4] or info[5] or now
  local cutoff = '(' .. (tonumber(now) - tonumber(horizon))
  local function add(key)
    redis.call('ZADD', key, score, job_id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    redis.call('PEXPIRE', key, horizon)
  end
  local index = prefix .. ':index:'
  if created == '1' then
    add(index .. 'all')
    add(index .. 'queue:' .. queue)
    add(index .. 'task:' .. task)
  end
  if phase ~= '' and phase ~= was then
    if was then
      redis.call('ZREM', index .. 'phase:' .. was, job_id)
      redis.call('ZREM', index .. 'phase:' .. was .. ':queue:' .. queue, job_id)
    end
    add(index .. 'phase:' .. phase)
    add(index .. 'phase:' .. phase .. ':queue:' .. queue)
    redis.call('HSET', record, '{records.PHASE}', phase)
  end
  local waits = prefix .. ':retry-waits:' .. queue
  if event == 'retrying' then
    redis.call('ZADD', waits, info[6] or now, job_id)
    redis.call('PEXPIRE', waits, horizon)
  elseif phase ~= '' then
    redis.call('ZREM', waits, job_id)
  end
  local snapshot = redis.call('HGETALL', record)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event, 'extra', extra, unpack(snapshot))
  local ttl = redis.call('PTTL', record)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
  return 1
end
"""

# The function's arguments after the two keys, as ARGV: prefix, job id, event, phase, now, horizon,
# maxlen, extra, created, number of field/value items, the items, then the fields to delete.
ARGS_LUA = """
local nfields = tonumber(ARGV[{base} + 10])
local fields = {{}}
for i = 1, nfields do fields[i] = ARGV[{base} + 10 + i] end
local drop = {{}}
for i = {base} + 11 + nfields, #ARGV do drop[#drop + 1] = ARGV[i] end
"""


def unpack_lua(args_at: int) -> str:
    """Lua that reads a Transition's field lists (`fields`, `drop`) from ARGV[args_at] on."""
    return ARGS_LUA.format(base=args_at - 1)


def call_lua(record_key: int, stream_key: int, args_at: int) -> str:
    """A Lua call of `transition` with the record and stream at those KEYS indexes and its
    arguments from ARGV[args_at] on (after `unpack_lua(args_at)`)."""
    base = args_at - 1
    argv = ", ".join(f"ARGV[{base + i}]" for i in range(1, 10))
    return f"transition(KEYS[{record_key}], KEYS[{stream_key}], {argv}, fields, drop)"


TRANSITION_SCRIPT = TRANSITION_LUA + unpack_lua(1) + f"return {call_lua(1, 2, 1)}\n"


def index_horizon_ms(settings: Settings) -> int:
    """How long index entries are kept after the job's run time: as long as a record can live."""
    return round(
        (settings.job_expires_s + settings.result_ttl_s + settings.job_timeout_s + RECORD_MARGIN_S) * 1000
    )


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

    def keys(self, keys: Keys) -> list[str]:
        return [keys.record(self.job_id), keys.events(self.job_id)]

    def args(self, settings: Settings) -> list[str | int]:
        items: list[str | int] = []
        for name, value in self.fields.items():
            items += [name, value]
        return [
            settings.key_prefix,
            self.job_id,
            self.event,
            self.phase.value if self.phase else "",
            self.now_ms,
            index_horizon_ms(settings),
            settings.events_maxlen,
            dumps(self.extra).decode() if self.extra is not None else "",
            "1" if self.created else "0",
            len(items),
            *items,
            *self.drop,
        ]

    def queue_on(self, pipe: Pipeline, settings: Settings) -> None:
        """Queue the transition on a (MULTI) pipeline."""
        keys = Keys(settings.key_prefix)
        pipe.eval(TRANSITION_SCRIPT, 2, *self.keys(keys), *[str(arg) for arg in self.args(settings)])

    async def apply(self, redis: Redis, settings: Settings) -> bool:
        """Run the transition now; False when the job has no record (nothing is written then)."""
        keys = Keys(settings.key_prefix)
        return bool(await run_script(redis, TRANSITION_SCRIPT, self.keys(keys), self.args(settings)))
