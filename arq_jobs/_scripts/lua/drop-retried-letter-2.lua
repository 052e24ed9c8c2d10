--[[
  Remove a dead letter that is being retried (arq_jobs._client.JobClient.retry_dead_letter) only if
  the enqueue of its retry before this script, in the same MULTI, stored the new job: a retry refused
  because its queue was full (enqueue-4.lua's `max_pending`) keeps the dead letter.

  KEYS[1] record — the record of the retry's job (Keys.record; a new id: it exists only if the enqueue
          stored the job)
  KEYS[2] dead_letter — the dead letter (Keys.dead_letter)

  ARGV[1] job_id — the dead-lettered job's id: its member in the indexes
  ARGV[2..] indexes — the dead-letter indexes that list it (DeadLetterStore.indexes)

  Returns 1 when the dead letter was removed, 0 when the retry's job was not stored (nothing is written).

  Keys not in KEYS: the indexes.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
for _, index in ipairs({unpack(ARGV, 2)}) do
  redis.call('ZREM', index, ARGV[1])
end
return 1
