--[[
  The start of an attempt (arq_jobs._worker.runtime.Runtime.begin), in one command: unless the job
  was cancelled meanwhile, shorten ARQ's in-progress key to the lease, keep the job's data and
  record alive past the attempt, and apply the `running` transition.

  KEYS[1] in_progress — ARQ's in-progress key (Keys.arq_in_progress)
  KEYS[2] arq_job — ARQ's job key (Keys.arq_job)
  KEYS[3] record — the job's record (Keys.record)
  KEYS[4] events — the job's event stream (Keys.events)

  ARGV[1] lease_ms — the in-progress key's TTL (ms)
  ARGV[2] job_ttl_ms — the job key's TTL (ms)
  ARGV[3] record_ttl_ms — the record's TTL (ms)
  ARGV[4..] transition — the `running` transition's arguments as transition-2.lua's ARGV

  Returns {1} when the job was cancelled (`cancel_requested` is set; nothing is written), else
  {0, the record's `trace`, its `workflow`} (either false/nil when absent).

  Keys not in KEYS: the index keys and retry waits the transition writes.
  Events: `running` on KEYS[4] unless cancelled.
]]
--!include includes/stats.lua
--!include includes/transition.lua
local F_CANCEL_REQUESTED = 'cancel_requested' -- mirrors arq_jobs._jobs.records.CANCEL_REQUESTED
local F_TRACE = 'trace' -- mirrors arq_jobs._jobs.records.TRACE
local F_WORKFLOW = 'workflow' -- mirrors arq_jobs._jobs.records.WORKFLOW

if redis.call('HEXISTS', KEYS[3], F_CANCEL_REQUESTED) == 1 then return {1} end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
transition_argv(KEYS[3], KEYS[4], ARGV, 4, #ARGV)
local found = redis.call('HMGET', KEYS[3], F_TRACE, F_WORKFLOW)
return {0, found[1], found[2]}
