--[[
  Claim a batch of due jobs of one queue for a worker's poll (arq_jobs._worker.claims): a job is
  claimed when it is due, still in the queue and nobody holds its in-progress key, by setting that
  key (the lease), so two workers never claim one job.

  KEYS[1] queue — ARQ's queue (Keys.queue): job ids by run-at time (ms)

  ARGV[1] now — the time (ms)
  ARGV[2] lease_ms — the lease (ms): the TTL of the in-progress keys set
  ARGV[3] want — how many jobs to claim at most
  ARGV[4] scan — how many queue entries to look at at most (running jobs stay in ARQ's queue until
          they finish, so the first entries are often taken)
  ARGV[5] in_progress_prefix — Keys.arq_in_progress(''): ARQ's in-progress key minus the job id
  ARGV[6..] limits — empty when no task of the worker has limits; else Keys.record('') (a record key
            minus the job id), then per limited task 7 values: its name, its rate's interval (ms,
            0 = none), its max running (0 = none), and its Keys.limit keys `rate`, `slots`,
            `running` and `waiting`

  Returns {more, id1, score1, id2, score2, ...}: `more` is 1 when due jobs were left unclaimed.

  Keys not in KEYS: each due job's in-progress key; with limits, its record and its task's limit keys.

  A due job of a limited task over its limit is not claimed: it is moved to the time it may try
  again and its record says why (`throttle`, `throttled_until`); no attempt is counted.
  - rate (GCRA, no burst): a start at most every interval after the previous one (`rate` holds when
    the next may start). A job seen for the first time takes the next free slot behind those
    already given out (`slots` holds the last one), so a backlog is parked once, in order, and not
    looked at again before its slot; at its slot only the pace can hold it back once more.
  - concurrency: at most N places (`running`, scored by lease expiry: a dead worker's places free
    themselves); a job finding none waits a lease at most, in the task's `waiting` set (member
    `<queue key>|<job id>`), and is woken as soon as a place is given back (release-place-2.lua).
]]
local F_TASK = 'task' -- mirrors arq_jobs._jobs.records.TASK
local F_THROTTLE = 'throttle' -- mirrors arq_jobs._jobs.records.THROTTLE
local F_THROTTLED_UNTIL = 'throttled_until' -- mirrors arq_jobs._jobs.records.THROTTLED_UNTIL

local now = tonumber(ARGV[1])
local lease_ms = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local scan = tonumber(ARGV[4])
local in_progress = ARGV[5]
local record_prefix = ARGV[6]
local limits = {}
for i = 7, #ARGV, 7 do
  limits[ARGV[i]] = {interval = tonumber(ARGV[i + 1]), max = tonumber(ARGV[i + 2]), rate = ARGV[i + 3],
    slots = ARGV[i + 4], running = ARGV[i + 5], waiting = ARGV[i + 6]}
end
local limited = #ARGV >= 7
local function park(id, record, until_ms, reason)
  redis.call('ZADD', KEYS[1], until_ms, id)
  redis.call('HSET', record, F_THROTTLE, reason, F_THROTTLED_UNTIL, until_ms)
end
-- true when the job may start now (it then takes the pace and a place), false when it was parked
local function admit(id, score)
  local record = record_prefix .. id
  local info = redis.call('HMGET', record, F_TASK, F_THROTTLE)
  local task = info[1]
  local limit = task and limits[task]
  if not limit then return true end
  if limit.max > 0 then
    redis.call('ZREMRANGEBYSCORE', limit.running, '-inf', now)
    if redis.call('ZCARD', limit.running) >= limit.max then
      redis.call('ZADD', limit.waiting, 'NX', score, KEYS[1] .. '|' .. id)
      park(id, record, now + lease_ms, 'concurrency')
      return false
    end
  end
  if limit.interval > 0 then
    local interval = limit.interval
    local tat = tonumber(redis.call('GET', limit.rate) or '0')
    if info[2] then  -- held back before: its turn came, only the pace can hold it once more
      if tat > now then
        park(id, record, math.ceil(tat), 'rate')
        return false
      end
    else  -- first look: behind every job holding a slot already
      local slot = math.max(tat, tonumber(redis.call('GET', limit.slots) or '0') + interval)
      if slot > now then
        redis.call('SET', limit.slots, slot, 'PX', math.ceil(slot - now + interval) + 1000)
        park(id, record, math.ceil(slot), 'rate')
        return false
      end
    end
    redis.call('SET', limit.rate, now + interval, 'PX', math.ceil(interval) + 1000)
  end
  if limit.max > 0 then
    redis.call('ZADD', limit.running, now + lease_ms, id)
    redis.call('ZREM', limit.waiting, KEYS[1] .. '|' .. id)
  end
  return true
end
local claimed = {0}
local offset = 0
local looked = 0
while looked < scan do
  local page = math.min(200, scan - looked)
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, page)
  local parked = 0
  for i = 1, #due, 2 do
    local lease = in_progress .. due[i]
    if limited then
      if redis.call('EXISTS', lease) == 0 then
        if (#claimed - 1) / 2 >= want then
          claimed[1] = 1
          return claimed
        end
        if admit(due[i], due[i + 1]) then
          redis.call('PSETEX', lease, ARGV[2], '1')
          claimed[#claimed + 1] = due[i]
          claimed[#claimed + 1] = due[i + 1]
        else
          parked = parked + 1
        end
      end
    elseif (#claimed - 1) / 2 >= want then  -- one more free job would be left behind: say so
      if redis.call('EXISTS', lease) == 0 then
        claimed[1] = 1
        return claimed
      end
    elseif redis.call('SET', lease, '1', 'PX', ARGV[2], 'NX') then  -- free: taken in one command
      claimed[#claimed + 1] = due[i]
      claimed[#claimed + 1] = due[i + 1]
    end
  end
  if #due < page * 2 then return claimed end
  looked = looked + page
  offset = offset + page - parked  -- parked jobs left the due range
end
claimed[1] = 1
return claimed
