--[[
  Storing an enqueued job (arq_jobs._jobs.enqueue), shared by enqueue-4.lua (one job) and
  enqueue-batch-1.lua (a batch in one call). Uses transition_argv: include includes/transition.lua
  before it.

  queue_full(max_pending, waiting, adding) -> n | nil
    Back-pressure (JOBS_QUEUE_MAX_PENDING): n, the jobs the sorted set `waiting` (the queue's `queued`
    phase index) holds, when `adding` more would take it over `max_pending`; else nil. With
    `max_pending` '0' nothing is counted (nil).

  store_job(arq_job, queue, record, events, job_id, job, job_ttl_ms, run_at, record_ttl_ms, fields,
            fields_first, fields_last, transition, transition_first, transition_last)
    ARQ's job key (`job`, expiring after `job_ttl_ms`) and its entry in `queue` (scored `run_at`),
    the record (fields[fields_first..fields_last]: field, value, ...; expiring after
    `record_ttl_ms`) and the job's first transition, its arguments laid out as transition-2.lua's
    ARGV in transition[transition_first..transition_last].
]]
local function queue_full(max_pending, waiting, adding)
  if max_pending == '0' then return nil end
  local n = redis.call('ZCARD', waiting)
  if n + adding > tonumber(max_pending) then return n end
  return nil
end

local function store_job(arq_job, queue, record, events, job_id, job, job_ttl_ms, run_at, record_ttl_ms,
                         fields, fields_first, fields_last, transition, transition_first, transition_last)
  redis.call('PSETEX', arq_job, job_ttl_ms, job)
  redis.call('ZADD', queue, run_at, job_id)
  redis.call('HSET', record, unpack(fields, fields_first, fields_last))
  redis.call('PEXPIRE', record, record_ttl_ms)
  transition_argv(record, events, transition, transition_first, transition_last)
end
