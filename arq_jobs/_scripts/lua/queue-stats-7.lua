--[[
  One queue's counts by state and the run time of its oldest pending job (arq_jobs._queues), read
  atomically with a handful of O(log n) sorted-set reads.

  KEYS[1] queued — the queue's `queued` phase index (Keys.index('phase', 'queued:queue:<q>'))
  KEYS[2] running — its `running` phase index
  KEYS[3] succeeded — its `succeeded` phase index
  KEYS[4] failed — its `failed` phase index
  KEYS[5] cancelled — its `cancelled` phase index
  KEYS[6] retry_waits — the queue's retrying jobs by the end of their backoff (Keys.retry_waits)
  KEYS[7] dead_letters — the queue's dead letters (Keys.dead_letters_of_queue)

  ARGV[1] now — the time (ms)

  Returns {pending, scheduled, retrying, running, succeeded, failed, cancelled, dead letters,
  oldest}: `oldest` is the run time (ms) of the earliest due queued job that is not waiting out a
  retry backoff, -1 when none (looks at 1000 due entries at most). The caller clamps `pending` at 0.
]]
local now = tonumber(ARGV[1])
local queued = redis.call('ZCARD', KEYS[1])
local scheduled = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local retrying = redis.call('ZCOUNT', KEYS[6], '(' .. now, '+inf')
local oldest = -1
local offset = 0
while oldest == -1 and offset < 1000 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', offset, 100)
  if #due == 0 then break end
  for i = 1, #due, 2 do
    local wait = redis.call('ZSCORE', KEYS[6], due[i])
    if not wait or tonumber(wait) <= now then
      oldest = tonumber(due[i + 1])
      break
    end
  end
  offset = offset + 100
end
return {queued - scheduled - retrying, scheduled, retrying, redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4]), redis.call('ZCARD', KEYS[5]),
  redis.call('ZCARD', KEYS[7]), oldest}
