--[[
  Count a workflow step's success (arq_jobs._workflows.engine.Workflows.advance): store its result
  once, and tell the one caller whose result completes a stage that the next stage is to be
  enqueued. Scripts run one at a time, so exactly one of the stage's last finishers sees it complete.

  KEYS[1] workflow — the workflow's hash (Keys.workflow; fields in arq_jobs._workflows.records)

  ARGV[1] stage — the step's stage (0-based)
  ARGV[2] index — the step's index in its stage
  ARGV[3] result — the step's result (JSON)

  Returns {0} when there is nothing to do (no such workflow, stage not complete, cancelled, failed,
  next stage enqueued already, or the last stage completed before); {1, spec, the stage's results in
  order} when the stage is complete and the next one is to be enqueued; {2} when this result
  completed the last stage. A new result renews the hash's TTL (its `ttl` field).
]]
local NOTHING = 0 -- mirrors arq_jobs._workflows.engine.NOTHING
local STAGE_COMPLETE = 1 -- mirrors arq_jobs._workflows.engine.STAGE_COMPLETE
local WORKFLOW_COMPLETE = 2 -- mirrors arq_jobs._workflows.engine.WORKFLOW_COMPLETE
local F_SPEC = 'spec' -- mirrors arq_jobs._workflows.records.SPEC
local F_STAGES = 'stages' -- mirrors arq_jobs._workflows.records.STAGES
local F_TTL = 'ttl' -- mirrors arq_jobs._workflows.records.TTL
local F_CANCELLED = 'cancelled' -- mirrors arq_jobs._workflows.records.CANCELLED
local F_ERROR = 'error' -- mirrors arq_jobs._workflows.records.ERROR
local F_SIZE = 'size:' -- mirrors arq_jobs._workflows.records.SIZE
local F_DONE = 'done:' -- mirrors arq_jobs._workflows.records.DONE
local F_ENQUEUED = 'enq:' -- mirrors arq_jobs._workflows.records.ENQUEUED
local F_RESULT = 'r:' -- mirrors arq_jobs._workflows.records.RESULT

if redis.call('EXISTS', KEYS[1]) == 0 then return {NOTHING} end
local stage = tonumber(ARGV[1])
local new = redis.call('HSETNX', KEYS[1], F_RESULT .. stage .. ':' .. ARGV[2], ARGV[3])
local done
if new == 1 then
  done = redis.call('HINCRBY', KEYS[1], F_DONE .. stage, 1)
  redis.call('PEXPIRE', KEYS[1], redis.call('HGET', KEYS[1], F_TTL))
else
  done = tonumber(redis.call('HGET', KEYS[1], F_DONE .. stage) or '0')
end
local size = tonumber(redis.call('HGET', KEYS[1], F_SIZE .. stage))
if done < size then return {NOTHING} end
if stage + 1 >= tonumber(redis.call('HGET', KEYS[1], F_STAGES)) then
  if new == 1 then return {WORKFLOW_COMPLETE} end
  return {NOTHING}
end
if redis.call('HEXISTS', KEYS[1], F_CANCELLED) == 1 or redis.call('HEXISTS', KEYS[1], F_ERROR) == 1
  or redis.call('HEXISTS', KEYS[1], F_ENQUEUED .. (stage + 1)) == 1 then
  return {NOTHING}
end
local fields = {F_SPEC}
for i = 0, size - 1 do fields[#fields + 1] = F_RESULT .. stage .. ':' .. i end
local found = redis.call('HMGET', KEYS[1], unpack(fields))
return {STAGE_COMPLETE, unpack(found)}
