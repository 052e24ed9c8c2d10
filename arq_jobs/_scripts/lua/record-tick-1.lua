--[[
  Record a schedule's last fired tick and the job it made (arq_jobs._schedules.views), unless a
  later tick is recorded already: a slow process must not move the last run back.

  KEYS[1] schedule — the schedule's hash (Keys.schedule)

  ARGV[1] tick — the tick (epoch ms)
  ARGV[2] job_id — the job the tick made

  Returns 1 when recorded, 0 when a tick as late or later was recorded already.
]]
local F_TICK = 'tick' -- mirrors arq_jobs._schedules.views.LAST_TICK
local F_JOB = 'job_id' -- mirrors arq_jobs._schedules.views.LAST_JOB

local recorded = tonumber(redis.call('HGET', KEYS[1], F_TICK) or '-1')
if tonumber(ARGV[1]) <= recorded then return 0 end
redis.call('HSET', KEYS[1], F_TICK, ARGV[1], F_JOB, ARGV[2])
return 1
