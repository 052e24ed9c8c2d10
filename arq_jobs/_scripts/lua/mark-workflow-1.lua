--[[
  Set one field of a workflow's hash and renew its TTL (arq_jobs._workflows.engine): the
  `cancelled` flag, the `error` that stops it, a stage's `enq:<s>` mark.

  KEYS[1] workflow — the workflow's hash (Keys.workflow)

  ARGV[1] field — the field
  ARGV[2] value — its value
  ARGV[3] only_new — '1': leave a value already set

  Returns 1 when it set the field, 0 when it did not (`only_new` and set already, or no such
  workflow: nothing is written then).
]]
local F_TTL = 'ttl' -- mirrors arq_jobs._workflows.records.TTL

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local set = 1
if ARGV[3] == '1' then set = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], redis.call('HGET', KEYS[1], F_TTL))
return set
