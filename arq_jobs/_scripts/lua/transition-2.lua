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
  ARGV[14..] changes — n, then n items (field, value, ...) to set on the record, then field names to
             delete from it

  Returns 1, or 0 when the job has no record (nothing is written then).

  Keys not in KEYS: the index keys and the queue's retry waits (see includes/transition.lua).
  Events: appends `event` to KEYS[2] with `extra` and a snapshot of the record's fields.
]]
--!include includes/transition.lua

local fields, drop = read_changes(ARGV, 14, #ARGV)
return transition(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8],
  ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], fields, drop)
