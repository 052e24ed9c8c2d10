--[[
  The heartbeats of the workers that beat recently, in one round trip
  (arq_jobs._worker_registry.WorkerRegistry.alive_beats: the version guard).

  KEYS[1] workers — the worker registry (Keys.workers): worker ids by last heartbeat (ms)

  ARGV[1] since — the oldest heartbeat time that counts (ms)
  ARGV[2] worker_prefix — Keys.worker(''): a worker's heartbeat key minus the worker id

  Returns the heartbeats (JSON) of the workers that beat since `since`, oldest beat first; '' for a
  worker whose heartbeat key has expired.

  Keys not in KEYS: each listed worker's heartbeat key.
]]
local found = {}
for i, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  found[i] = redis.call('GET', ARGV[2] .. id) or ''
end
return found
