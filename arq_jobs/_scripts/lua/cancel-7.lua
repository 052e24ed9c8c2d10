--[[
  Cancel a job (arq_jobs._client.JobClient.cancel). Waiting (pending, scheduled, retrying): taken
  off its queue, ARQ's job and retry keys deleted, marked cancelled with the `cancelled`
  transition. Running: only flagged (`cancel_requested`); its worker stops it.

  KEYS[1] record — the job's record (Keys.record)
  KEYS[2] result — ARQ's result key (Keys.arq_result)
  KEYS[3] in_progress — ARQ's in-progress key (Keys.arq_in_progress)
  KEYS[4] arq_job — ARQ's job key (Keys.arq_job)
  KEYS[5] retry — ARQ's retry counter (Keys.arq_retry)
  KEYS[6] queue — ARQ's queue the job waits in (Keys.queue)
  KEYS[7] events — the job's event stream (Keys.events)

  ARGV[1] now — the time (ms)
  ARGV[2] job_id — the job's id
  ARGV[3..] transition — the `cancelled` transition's arguments as transition-2.lua's ARGV (whose
            `keep` says how long the cancelled job is kept)

  Returns 'missing' (no record, or no job key), 'ended' (cancelled already, or has a result),
  'running' (flagged), or 'cancelled'.

  Keys not in KEYS: the index keys and retry waits the transition writes.
  Events: `cancelled` on KEYS[7] when it returns 'cancelled'.
]]
--!include includes/stats.lua
--!include includes/transition.lua
-- (RETRYING and F_NEXT_ATTEMPT_AT come with it)
local F_MARK = 'state' -- mirrors arq_jobs._jobs.records.MARK
local F_CANCEL_REQUESTED = 'cancel_requested' -- mirrors arq_jobs._jobs.records.CANCEL_REQUESTED
local F_FINISHED_AT = 'finished_at' -- mirrors arq_jobs._jobs.records.FINISHED_AT
local CANCELLED = 'cancelled' -- mirrors arq_jobs._jobs.states.JobState.CANCELLED

if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
local mark = redis.call('HGET', KEYS[1], F_MARK)
if mark == CANCELLED then return 'ended' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'ended' end
-- a job marked retrying is waiting even while its failed attempt's lease is still being released
if redis.call('EXISTS', KEYS[3]) == 1 and mark ~= RETRYING then
  redis.call('HSET', KEYS[1], F_CANCEL_REQUESTED, ARGV[1])
  return 'running'
end
if redis.call('EXISTS', KEYS[4]) == 0 then return 'missing' end
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('DEL', KEYS[4], KEYS[5])
-- cancel_requested too: a worker that already read the job stops at its attempt's start
redis.call('HSET', KEYS[1], F_MARK, CANCELLED, F_FINISHED_AT, ARGV[1], F_CANCEL_REQUESTED, ARGV[1])
redis.call('HDEL', KEYS[1], F_NEXT_ATTEMPT_AT)
transition_argv(KEYS[1], KEYS[7], ARGV, 3, #ARGV)
return 'cancelled'
