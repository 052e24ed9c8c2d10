--[[
  Writes done only if the enqueue before this script, in the same MULTI, stored its job
  (arq_jobs._jobs.enqueue.if_stored): a job refused because its queue was full (enqueue-4.lua's
  `max_pending`) writes nothing more. Used for an Idempotency-Key's claim (JobClient._store) and the
  removal of a retried dead letter (DeadLetterStore.remove_if_retried).

  KEYS[1] record — the enqueued job's record (Keys.record; a new id: it exists only if the enqueue
          stored the job)

  ARGV[1] set_key — a key to SET; '' = none
  ARGV[2] set_value — its value
  ARGV[3] set_ttl_ms — its TTL (ms)
  ARGV[4] del_key — a key to DEL; '' = none
  ARGV[5] member — the member to ZREM from `indexes`
  ARGV[6..] indexes — sorted sets to remove `member` from (a list, possibly empty)

  Returns 1 when the job was stored (the writes are done), 0 when it was not (nothing is written).

  Keys not in KEYS: `set_key`, `del_key`, the indexes.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then redis.call('SET', ARGV[1], ARGV[2], 'PX', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('DEL', ARGV[4]) end
for _, index in ipairs({unpack(ARGV, 6)}) do redis.call('ZREM', index, ARGV[5]) end
return 1
