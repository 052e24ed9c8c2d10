--[[
  The end of an attempt (arq_jobs._worker.finish): what ARQ 0.28's `Worker.finish_job` transaction
  does, plus our transition of the job, so that the event and ARQ's result appear together.

  KEYS[1] in_progress — ARQ's in-progress key of the job (Keys.arq_in_progress)
  KEYS[2] result — ARQ's result key (Keys.arq_result)
  KEYS[3] retry — ARQ's retry counter (Keys.arq_retry)
  KEYS[4] arq_job — ARQ's job key (Keys.arq_job)
  KEYS[5] abort — ARQ's sorted set of abort requests
  KEYS[6] queue — ARQ's queue the job was taken from
  KEYS[7] record — the job's record (Keys.record)
  KEYS[8] events — the job's event stream (Keys.events)

  ARGV[1] job_id — the job's id
  ARGV[2] keep_in_progress_ms — '' = delete the in-progress key, else keep it this long (ms)
  ARGV[3] finish — '1': the job is done (store the result, delete ARQ's keys of the job, take it off
          the queue and the abort set); '0': it stays queued
  ARGV[4] result — ARQ's serialized result; '' = none stored
  ARGV[5] result_ttl_ms — the result's TTL (ms); '' = kept forever
  ARGV[6] incr_score — when not finishing: move the job this much later in its queue; '' = leave it
  ARGV[7..] transition — empty, or a transition's arguments as transition-2.lua's ARGV

  Returns 1.

  Keys not in KEYS: the index keys and retry waits the transition writes.
  Events: the transition's event (succeeded, failed, retrying, cancelled, ...) on KEYS[8].
]]
--!include includes/stats.lua
--!include includes/transition.lua

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
if #ARGV >= 7 then transition_argv(KEYS[7], KEYS[8], ARGV, 7, #ARGV) end
return 1
