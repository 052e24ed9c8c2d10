--[[
  Store a batch of enqueued jobs of one task, all or none (arq_jobs._jobs.enqueue: JobClient.enqueue_many):
  for each job what enqueue-4.lua stores for one (includes/enqueue.lua's store_job: ARQ's job key and
  queue entry, our record, the `pending` or `scheduled` transition), then one wake-up of the queue's
  workers for the whole batch. The jobs share everything but their id and serialized job.

  KEYS[1] queue — ARQ's queue (Keys.queue): job ids by run-at time (ms)

  ARGV[1] record_prefix — Keys.record(''): a record key minus the job id
  ARGV[2] events_prefix — Keys.events(''): an event stream key minus the job id
  ARGV[3] job_ttl_ms — each job key's TTL (ms)
  ARGV[4] run_at — when the jobs are due (ms): their score in the queue
  ARGV[5] record_ttl_ms — each record's TTL (ms)
  ARGV[6] wake_channel — the queue's wake-up channel (Keys.wake_channel); '' = publish nothing
  ARGV[7] max_pending — back-pressure (JOBS_QUEUE_MAX_PENDING): store nothing when the jobs waiting in
          the queue and the batch together would be more than this; '0': no limit (nothing is counted)
  ARGV[8] waiting — the queue's `queued` phase index (what back-pressure counts); '' when
          `max_pending` is '0'
  ARGV[9] job_id_at — where the job id is among the transition's arguments (1: the first)
  ARGV[10] transition_size — t, the number of the transition's arguments
  ARGV[11] record_size — m, the number of the record's fields and values
  ARGV[12..] transition_record_and_jobs — the first transition's t arguments, as transition-2.lua's
             ARGV with no changes, made for one of the jobs (each job's own id takes the place of
             the value at `job_id_at`); then the record's m fields and values, the same for every
             job; then per job its id and its serialized job (ARQ's JobDef)

  Returns n, the number of jobs stored; -w when the queue holds w jobs waiting and w + n >
  `max_pending` (nothing is stored then).

  Keys not in KEYS: each job's ARQ job key (arq:job:<id>), record and event stream; the index keys
  and retry waits the transitions write; `waiting`.
  Events: each job's `pending` or `scheduled` on its stream; publishes '' once on `wake_channel`.
]]
--!include includes/stats.lua
--!include includes/transition.lua
--!include includes/enqueue.lua

local JOB_PREFIX = 'arq:job:' -- mirrors arq_jobs._arq.JOB_PREFIX

local transition_last = 11 + tonumber(ARGV[10])
local first_job = transition_last + 1 + tonumber(ARGV[11])
local n = (#ARGV - first_job + 1) / 2
local waiting = queue_full(ARGV[7], ARGV[8], n)
if waiting then return -waiting end
local transition = {unpack(ARGV, 12, transition_last)}
local job_id_at = tonumber(ARGV[9])
for i = first_job, #ARGV, 2 do
  local id = ARGV[i]
  transition[job_id_at] = id
  store_job(JOB_PREFIX .. id, KEYS[1], ARGV[1] .. id, ARGV[2] .. id, id, ARGV[i + 1], ARGV[3], ARGV[4], ARGV[5],
    ARGV, transition_last + 1, first_job - 1, transition, 1, #transition)
end
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], '') end
return n
