--[[
  What is known of some jobs, read atomically (arq_jobs._jobs.snapshots: JobClient.statuses): per job
  its record, ARQ's result, whether ARQ's in-progress key and job key exist. A script, not a MULTI:
  one consistent snapshot (ARQ may finish a job between two reads), which a Redis out of memory still
  serves (it refuses every MULTI, reads or not); it writes nothing.

  ARGV[1] record_prefix — Keys.record(''): a record key minus the job id
  ARGV[2..] job_ids — the jobs

  Returns a list with, per job in order, {record (HGETALL's flat field/value list), result (nil
  when none), in_progress (0/1), queued (0/1: ARQ's job key exists)}.

  Keys not in KEYS: each job's record and ARQ's result, in-progress and job keys.
]]
local RESULT_PREFIX = 'arq:result:' -- mirrors arq_jobs._arq.RESULT_PREFIX
local IN_PROGRESS_PREFIX = 'arq:in-progress:' -- mirrors arq_jobs._arq.IN_PROGRESS_PREFIX
local JOB_PREFIX = 'arq:job:' -- mirrors arq_jobs._arq.JOB_PREFIX

local found = {}
for i, id in ipairs({unpack(ARGV, 2)}) do
  found[i] = {
    redis.call('HGETALL', ARGV[1] .. id),
    redis.call('GET', RESULT_PREFIX .. id),
    redis.call('EXISTS', IN_PROGRESS_PREFIX .. id),
    redis.call('EXISTS', JOB_PREFIX .. id),
  }
end
return found
