--[[
  Store an Idempotency-Key's claim (arq_jobs._client.JobClient._store) only if the enqueue before this
  script, in the same MULTI, stored the job the claim names: a job refused because its queue was full
  (enqueue-4.lua's `max_pending`) leaves no claim behind, and the same key may be sent again.

  KEYS[1] record — the record of the job the claim names (Keys.record; a new id: it exists only if
          the enqueue stored the job)
  KEYS[2] claim — the key's claim (Keys.idempotency)

  ARGV[1] claim — the claim (IdempotencyClaim.to_json)
  ARGV[2] ttl_ms — the claim's TTL (ms)

  Returns 1 when the claim was stored, 0 when the job was not (nothing is written).
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
