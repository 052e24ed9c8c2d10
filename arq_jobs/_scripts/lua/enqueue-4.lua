--[[
  Store an enqueued job (arq_jobs._jobs.enqueue): ARQ's job key and queue entry, our record, the
  `pending` or `scheduled` transition (indexes, first event) and the wake-up of the queue's workers
  (includes/enqueue.lua's store_job; enqueue-batch-1.lua stores many at once).

  KEYS[1] arq_job — ARQ's job key (Keys.arq_job): the serialized job
  KEYS[2] queue — ARQ's queue (Keys.queue): job ids by run-at time (ms)
  KEYS[3] record — the job's record (Keys.record)
  KEYS[4] events — the job's event stream (Keys.events)

  ARGV[1] job_id — the job's id
  ARGV[2] job — the serialized job (ARQ's JobDef)
  ARGV[3] job_ttl_ms — the job key's TTL (ms)
  ARGV[4] run_at — when the job is due (ms): its score in the queue
  ARGV[5] record_ttl_ms — the record's TTL (ms)
  ARGV[6] wake_channel — the queue's wake-up channel (Keys.wake_channel); '' = publish nothing
  ARGV[7] only_new — '1': store nothing and answer 0 when a job with this id exists (record or job key)
  ARGV[8] max_pending — back-pressure (JOBS_QUEUE_MAX_PENDING): store nothing when the queue already
          holds this many jobs waiting to start, or more; '0': no limit (nothing is counted)
  ARGV[9] waiting — the queue's `queued` phase index (Keys.index('phase', 'queued:queue:<q>')): the
          jobs waiting to start (pending, scheduled, retrying; not the running ones ARQ's queue also
          holds); '' when `max_pending` is '0'
  ARGV[10..28] transition — the transition's arguments as transition-2.lua's ARGV, with no changes
  ARGV[29..] record_fields — the record's fields and values

  Returns 1 when stored, 0 when `only_new` found the job, -n when the queue holds n jobs waiting
  (n >= `max_pending`) and nothing was stored.

  Keys not in KEYS: the index keys and retry waits the transition writes, `waiting`.
  Events: the transition's `pending` or `scheduled` on KEYS[4]; publishes '' on `wake_channel`.
]]
--!include includes/stats.lua
--!include includes/transition.lua
--!include includes/enqueue.lua

if ARGV[7] == '1' and (redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[1]) == 1) then
  return 0
end
local waiting = queue_full(ARGV[8], ARGV[9], 1)
if waiting then return -waiting end
store_job(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
  ARGV, 29, #ARGV, ARGV, 10, 28)
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], '') end
return 1
