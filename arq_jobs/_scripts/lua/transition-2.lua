--[[
  Apply one state transition to a job (arq_jobs._jobs.transitions.Transition.apply): record, listing
  indexes and event stream together; see includes/transition.lua.

  KEYS[1] record — the job's record (Keys.record)
  KEYS[2] events — the job's event stream (Keys.events)

  ARGV[1] index_prefix — Keys.index(''): an index key minus its kind
  ARGV[2] retry_waits_prefix — Keys.retry_waits(''): a queue's retry waits key minus the queue
  ARGV[3] job_id — the job's id (the member of the indexes)
  ARGV[4] event — the event appended: a state entered, or `progress`
  ARGV[5] phase — the phase entered (queued, running, succeeded, failed, cancelled); '' = unchanged
  ARGV[6] now — the time (ms): the score when the record has no run time
  ARGV[7] horizon — how long index entries are kept (ms) after the job's run time
  ARGV[8] maxlen — the event stream's approximate maximum length
  ARGV[9] extra — the event's `extra` (JSON: the result or error of a finished job) or ''
  ARGV[10] created — '1' at enqueue: add the job to the `all`, `queue:<q>` and `task:<t>` indexes
  ARGV[11] keep — '' or, for a transition that ends the job, how long its record is kept (ms)
  ARGV[12] events_keep — with `keep`: how long its event stream is kept (ms)
  ARGV[13] keep_count — with `keep`: the queue's index of the phase entered keeps this many jobs,
           deleting the older ones; '0' = no limit
  ARGV[14] stats_prefix — Keys.stats_prefix(): what the statistics' keys start with
  ARGV[15] stats_minutes_ttl — how long per-minute statistics are kept (ms); '0' = not written
  ARGV[16] stats_hours_ttl — how long per-hour statistics are kept (ms); '0' = not written
  ARGV[17] run_ms — an ending attempt's run time (ms), counted in the statistics; '' = none (the
           transition does not end an attempt that ran)
  ARGV[18] wait_ms — with `run_ms`: how long that attempt waited to start after it was due (ms)
  ARGV[19..] changes — n, then n items (field, value, ...) to set on the record, then field names to
             delete from it

  Returns 1, or 0 when the job has no record (nothing is written then).

  Keys not in KEYS: the index keys, the queue's retry waits and the statistics (see
  includes/transition.lua).
  Events: appends `event` to KEYS[2] with `extra` and a snapshot of the record's fields.
]]
--!include includes/stats.lua
--!include includes/transition.lua

local fields, drop = read_changes(ARGV, 19, #ARGV)
return transition(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15], ARGV[16], ARGV[17], ARGV[18],
  fields, drop)
