"""The end of an attempt as one script: ARQ 0.28's `Worker.finish_job` transaction, plus our
transition of the job (event, indexes, record), so the `succeeded` event and ARQ's result appear
together — and, being one script call, it is sent in the same batch as other jobs' ends
(`arq_jobs._scripts.batch`).
"""

from __future__ import annotations

from arq.constants import abort_jobs_ss
from arq.utils import to_ms

from arq_jobs._config import Settings
from arq_jobs._jobs.transitions import TRANSITION_LUA, Transition, call_lua, unpack_lua
from arq_jobs._keys import Keys

# KEYS: in-progress, result, retry, job, abort set, queue, record, events.
# ARGV: job id, keep in-progress for (ms, '' = delete it), finish ('1'/'0'), result data ('' = none),
# result TTL (ms, '' = none), score increment ('' = none), transition ('1'/'0'), its arguments.
FINISH_SCRIPT = (
    TRANSITION_LUA
    + f"""
local job_id = ARGV[1]
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if ARGV[3] == '1' then
  if ARGV[4] ~= '' then
    if ARGV[5] == '' then redis.call('SET', KEYS[2], ARGV[4])
    else redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5]) end
  end
  redis.call('DEL', KEYS[3], KEYS[4])
  redis.call('ZREM', KEYS[5], job_id)
  redis.call('ZREM', KEYS[6], job_id)
elseif ARGV[6] ~= '' then
  redis.call('ZINCRBY', KEYS[6], ARGV[6], job_id)
end
if ARGV[7] == '1' then
{unpack_lua(8)}
  {call_lua(7, 8, 8)}
end
return 1
"""
)


def finish_call(
    settings: Settings,
    queue_key: str,
    job_id: str,
    *,
    finish: bool,
    result_data: bytes | None,
    result_timeout_s: float | None,
    keep_result_forever: bool,
    incr_score: int | None,
    keep_in_progress: float | None,
    transition: Transition | None,
) -> tuple[list[str], list[str | int | bytes]]:
    """FINISH_SCRIPT's keys and arguments for ARQ's `finish_job` arguments and our transition."""
    keys = Keys(settings.key_prefix)
    expire = None if keep_result_forever else result_timeout_s
    result_ms = to_ms(expire)
    args: list[str | int | bytes] = [
        job_id,
        "" if keep_in_progress is None else to_ms(keep_in_progress) or 0,
        "1" if finish else "0",
        result_data or "",
        result_ms if result_ms else "",
        incr_score or "",
        "0" if transition is None else "1",
    ]
    if transition is not None:
        args += transition.args(settings)
    script_keys = [
        Keys.arq_in_progress(job_id),
        Keys.arq_result(job_id),
        Keys.arq_retry(job_id),
        Keys.arq_job(job_id),
        abort_jobs_ss,
        queue_key,
        keys.record(job_id),
        keys.events(job_id),
    ]
    return script_keys, args
