--[[
  Give back an attempt a worker's shutdown interrupted (arq_jobs._worker.runner.give_back_attempt):
  undo ARQ's count of it and show the job pending again.

  KEYS[1] retry — ARQ's retry counter (Keys.arq_retry): decremented only if it exists (a DECR would
          otherwise create one without a TTL)
  KEYS[2] record — the job's record (Keys.record)
  KEYS[3] events — the job's event stream (Keys.events)

  ARGV[1..] transition — the `pending` transition's arguments as transition-2.lua's ARGV

  Returns the transition's answer: 1, or 0 when the job has no record.

  Keys not in KEYS: the index keys and retry waits the transition writes.
  Events: `pending` on KEYS[3].
]]
--!include includes/stats.lua
--!include includes/transition.lua

if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECR', KEYS[1]) end
return transition_argv(KEYS[2], KEYS[3], ARGV, 1, #ARGV)
