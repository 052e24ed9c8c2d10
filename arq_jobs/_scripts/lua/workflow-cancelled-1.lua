--[[
  Whether a workflow was cancelled (asked when an attempt of one of its steps starts; a script so
  that it joins the worker's batch of script calls, arq_jobs._scripts.batch).

  KEYS[1] workflow — the workflow's hash (Keys.workflow)

  Returns 1 when its `cancelled` flag is set, else 0 (also when there is no such workflow).
]]
local F_CANCELLED = 'cancelled' -- mirrors arq_jobs._workflows.records.CANCELLED

return redis.call('HEXISTS', KEYS[1], F_CANCELLED)
