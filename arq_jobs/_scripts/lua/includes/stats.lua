--[[
  The statistics the scripts that end an attempt, and the queue-depth sampler, write (arq_jobs._stats):
  counters and histograms in one small hash per unit of time (a minute, an hour) and per scope.

  stats_bucket(ms) -> label
    The histogram bucket of a duration: the first of BOUNDS (ms) it does not exceed, or 'inf'.

  stats_add(stats_prefix, scope, now, counts, minutes_ttl, hours_ttl)
    Adds `counts` (a flat list of field, increment) to the scope's hash of the minute and of the hour
    holding `now` (ms): `<stats_prefix>m:<minute start, s>:<scope>` and `<stats_prefix>h:<hour start,
    s>:<scope>`. A unit whose TTL (ms) is '0' is not written. A hash expires its TTL after its unit
    ends; the expiry is set (again) whenever the first field of `counts` was absent or 0 (so put a
    field that grows first): a command about once per unit, not once per call. At those moments a
    scope `jobs:<queue>:<task>` (a task's attempts on one queue) is also noted in
    `<stats_prefix>scopes` (sorted set, member `<queue>:<task>`, scored by the latest `now`: a writer
    whose clock is behind does not move it back), where readers find
    which tasks and queues have statistics; entries older than the longer TTL leave it then.
]]
local STATS_MINUTE = 'm' -- mirrors arq_jobs._stats.window.MINUTE.name
local STATS_HOUR = 'h' -- mirrors arq_jobs._stats.window.HOUR.name
local STATS_JOBS = 'jobs:' -- mirrors arq_jobs._stats.window.JOBS_SCOPE
-- the same bounds (ms) as arq_jobs._stats.histogram.BOUNDS_MS (tests/integration/test_scripts.py)
local STATS_BOUNDS = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
  300000, 600000, 1800000, 3600000}
local STATS_UNITS = {{STATS_MINUTE, 60000}, {STATS_HOUR, 3600000}}

local function stats_bucket(ms)
  local value = tonumber(ms)
  for _, bound in ipairs(STATS_BOUNDS) do
    if value <= bound then return bound end
  end
  return 'inf'
end

local function stats_add(stats_prefix, scope, now, counts, minutes_ttl, hours_ttl)
  local at = tonumber(now)
  local ttls = {tonumber(minutes_ttl), tonumber(hours_ttl)}
  local noted = false
  for i, unit in ipairs(STATS_UNITS) do
    local ttl = ttls[i]
    if ttl > 0 then
      local start = at - at % unit[2]
      local key = stats_prefix .. unit[1] .. ':' .. string.format('%d', start / 1000) .. ':' .. scope
      local first = redis.call('HINCRBY', key, counts[1], counts[2])
      for j = 3, #counts, 2 do redis.call('HINCRBY', key, counts[j], counts[j + 1]) end
      if first == tonumber(counts[2]) then
        redis.call('PEXPIREAT', key, string.format('%d', start + unit[2] + ttl))  -- (a number could go as 1.8e+12)
        if not noted and string.sub(scope, 1, #STATS_JOBS) == STATS_JOBS then
          noted = true
          local scopes = stats_prefix .. 'scopes'
          redis.call('ZADD', scopes, 'GT', string.format('%d', at), string.sub(scope, #STATS_JOBS + 1))
          redis.call('ZREMRANGEBYSCORE', scopes, '-inf', '(' .. string.format('%d', at - math.max(ttls[1], ttls[2])))
        end
      end
    end
  end
end
