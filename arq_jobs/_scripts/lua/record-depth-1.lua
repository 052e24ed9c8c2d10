--[[
  Record one sample of a queue's depth in the statistics (arq_jobs._stats.depth), unless a worker
  recorded the sample of this tick (or a later one) already: each tick is sampled once, however many
  workers serve the queue.

  KEYS[1] sampled — the queue's last sampled tick (Keys.stats_sampled)

  ARGV[1] stats_prefix — Keys.stats_prefix(): what the statistics' keys start with
  ARGV[2] queue — the queue
  ARGV[3] tick — the sample's tick: the time (ms) divided by the sampling period, rounded down
  ARGV[4] now — the time (ms)
  ARGV[5] stats_minutes_ttl — how long per-minute statistics are kept (ms); '0' = not written
  ARGV[6] stats_hours_ttl — how long per-hour statistics are kept (ms); '0' = not written
  ARGV[7] ttl_ms — how long KEYS[1] is kept (a few periods)
  ARGV[8..11] depth — pending, scheduled, running, retrying (arq_jobs._queues.QueueStats)

  Returns 1 when recorded, 0 when this tick was sampled already.

  Keys not in KEYS: the queue's `depth:<queue>` statistics of the minute and the hour (includes/stats.lua).
]]
--!include includes/stats.lua

local recorded = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[3]) <= recorded then return 0 end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[7])
stats_add(ARGV[1], 'depth:' .. ARGV[2], ARGV[4], {'samples', 1, 'pending', ARGV[8], 'scheduled', ARGV[9],
  'running', ARGV[10], 'retrying', ARGV[11]}, ARGV[5], ARGV[6])
return 1
