"""Storing an enqueued job as one script: ARQ's job key and queue entry, our record, the `pending` or
`scheduled` transition (indexes, first event) and the wake-up message for the queue's workers.

One script instead of a MULTI of six commands: atomic all the same, smaller to send (EVALSHA), and,
being a single call, it can share a pipeline with other requests' enqueues (`arq_jobs._scripts.batch`).
"""

from __future__ import annotations

from dataclasses import dataclass

from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import TRANSITION_LUA, Transition, call_lua
from arq_jobs._keys import Keys

# KEYS: ARQ job, queue, record, events. ARGV: job id, job data, job data TTL (ms), run at (ms),
# record TTL (ms), wake channel ('' = none), only if new ('1': store nothing and answer 0 when a job
# with this id exists), the transition's 10 arguments (no fields to set or drop), then the record's
# fields and values. Answers 1 when stored.
ENQUEUE_SCRIPT = (
    TRANSITION_LUA
    + f"""
if ARGV[7] == '1' and (redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[1]) == 1) then
  return 0
end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[3], unpack(ARGV, 18, #ARGV))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local fields, drop = {{}}, {{}}
{call_lua(3, 4, 8)}
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], '') end
return 1
"""
)
TRANSITION_ARGS = 10


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

    def call(self, settings: Settings) -> tuple[list[str], list[str | int | bytes]]:
        """ENQUEUE_SCRIPT's keys and arguments."""
        keys = Keys(settings.key_prefix)
        transition = self.entered.args(settings)
        assert len(transition) == TRANSITION_ARGS, "an enqueue's transition sets no fields itself"
        args: list[str | int | bytes] = [
            self.job_id,
            self.job,
            self.expires_ms,
            self.run_at_ms,
            self.record_ttl_ms,
            Keys.wake_channel(self.queue_key) if self.wake else "",
            "1" if self.only_new else "0",
            *transition,
        ]
        for name, value in self.record.items():
            args += [name, value]
        script_keys = [
            Keys.arq_job(self.job_id),
            self.queue_key,
            keys.record(self.job_id),
            keys.events(self.job_id),
        ]
        return script_keys, args
