--[[
  Give back the concurrency place of a limited task's attempt that ended (arq_jobs._limits.worker),
  and make as many of the task's waiting jobs due now as there are free places, with a wake-up for
  their queue's workers.

  KEYS[1] running — the task's places (Keys.limit(task, 'running')): job ids by lease expiry (ms)
  KEYS[2] waiting — the task's held-back jobs (Keys.limit(task, 'waiting')): `<queue key>|<job id>`
            by due time (ms)

  ARGV[1] job_id — the job whose attempt ended
  ARGV[2] now — the time (ms): places whose lease ran out before it are freed too
  ARGV[3] max_running — the task's max running
  ARGV[4] record_prefix — Keys.record(''): a record key minus the job id
  ARGV[5] wake_suffix — Keys.wake_channel(''): what follows a queue key in its wake-up channel's name

  Returns how many waiting jobs it made due. An entry of a job no longer in its queue (cancelled,
  or claimed) is dropped without taking a place.

  Keys not in KEYS: each woken job's queue (from its `waiting` entry) and record (`throttled_until`
  set to now).
  Events: publishes '' on each woken job's queue's wake-up channel.
]]
local F_THROTTLED_UNTIL = 'throttled_until' -- mirrors arq_jobs._jobs.records.THROTTLED_UNTIL

redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local free = tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[1])
local woken = 0
while free > 0 do
  local first = redis.call('ZPOPMIN', KEYS[2])
  if #first == 0 then break end
  local sep = string.find(first[1], '|', 1, true)
  local queue, id = string.sub(first[1], 1, sep - 1), string.sub(first[1], sep + 1)
  if redis.call('ZADD', queue, 'XX', 'CH', ARGV[2], id) == 1 then
    redis.call('HSET', ARGV[4] .. id, F_THROTTLED_UNTIL, ARGV[2])
    redis.call('PUBLISH', queue .. ARGV[5], '')
    free = free - 1
    woken = woken + 1
  end
end
return woken
