--[[
  The state transition every change of a job goes through (arq_jobs._jobs.transitions): it updates
  the job's record, the listing indexes and the job's event stream together.

  transition(record, stream, index_prefix, retry_waits_prefix, job_id, event, phase, now, horizon,
             maxlen, extra, created, fields, drop) -> 0 | 1
    Answers 0 and writes nothing when the record does not exist. Else: sets `fields` (a flat list
    of field, value) and deletes `drop` (field names) on the record; at creation (`created` '1')
    adds the job to the `all`, `queue:<q>` and `task:<t>` indexes (and `owner:<o>` when the record
    names an owner, the API key that made it); when `phase` is not '' and not
    the record's phase, moves the job from its old phase's indexes (`phase:<p>` and
    `phase:<p>:queue:<q>`) to the new ones and notes the phase on the record; keeps
    `retry-waits:<q>` (a `retrying` event adds the job, scored by its next attempt; any other
    phase change removes it); appends `event` with `extra` and a snapshot of the record to the
    stream (MAXLEN ~ maxlen) and gives the stream the record's TTL. Index entries are scored by
    the job's run time; each write trims entries older than `horizon` ms and sets that TTL.
    Index keys are `index_prefix` (Keys.index('')) followed by the kind; the retry waits are
    `retry_waits_prefix` (Keys.retry_waits('')) followed by the queue: neither is in KEYS.

  read_changes(argv, first, last) -> fields, drop
    argv[first] is the number n of field/value items that follow; the n items are `fields`,
    argv[first + n + 1 .. last] are `drop`.

  transition_argv(record, stream, argv, first, last) -> 0 | 1
    transition() with its arguments read from argv[first..last], laid out as transition-2.lua's
    ARGV (what `Transition.args` builds).
]]
local F_QUEUE = 'queue' -- mirrors arq_jobs._jobs.records.QUEUE
local F_TASK = 'task' -- mirrors arq_jobs._jobs.records.TASK
local F_PHASE = 'phase' -- mirrors arq_jobs._jobs.records.PHASE
local F_SCHEDULED_FOR = 'scheduled_for' -- mirrors arq_jobs._jobs.records.SCHEDULED_FOR
local F_ENQUEUED_AT = 'enqueued_at' -- mirrors arq_jobs._jobs.records.ENQUEUED_AT
local F_NEXT_ATTEMPT_AT = 'next_attempt_at' -- mirrors arq_jobs._jobs.records.NEXT_ATTEMPT_AT
local F_OWNER = 'owner' -- mirrors arq_jobs._jobs.records.OWNER
local RETRYING = 'retrying' -- mirrors arq_jobs._jobs.states.JobState.RETRYING

local function transition(record, stream, index_prefix, retry_waits_prefix, job_id, event, phase, now,
                          horizon, maxlen, extra, created, fields, drop)
  if redis.call('EXISTS', record) == 0 then return 0 end
  if #fields > 0 then redis.call('HSET', record, unpack(fields)) end
  if #drop > 0 then redis.call('HDEL', record, unpack(drop)) end
  local info = redis.call('HMGET', record, F_QUEUE, F_TASK, F_PHASE, F_SCHEDULED_FOR, F_ENQUEUED_AT,
    F_NEXT_ATTEMPT_AT, F_OWNER)
  local queue, task, was = info[1] or '', info[2] or '', info[3]
  local score = info[4] or info[5] or now
  local cutoff = '(' .. (tonumber(now) - tonumber(horizon))
  local function add(key)
    redis.call('ZADD', key, score, job_id)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
    redis.call('PEXPIRE', key, horizon)
  end
  if created == '1' then
    add(index_prefix .. 'all')
    add(index_prefix .. 'queue:' .. queue)
    add(index_prefix .. 'task:' .. task)
    if info[7] then add(index_prefix .. 'owner:' .. info[7]) end
  end
  if phase ~= '' and phase ~= was then
    if was then
      redis.call('ZREM', index_prefix .. 'phase:' .. was, job_id)
      redis.call('ZREM', index_prefix .. 'phase:' .. was .. ':queue:' .. queue, job_id)
    end
    add(index_prefix .. 'phase:' .. phase)
    add(index_prefix .. 'phase:' .. phase .. ':queue:' .. queue)
    redis.call('HSET', record, F_PHASE, phase)
  end
  local waits = retry_waits_prefix .. queue
  if event == RETRYING then
    redis.call('ZADD', waits, info[6] or now, job_id)
    redis.call('PEXPIRE', waits, horizon)
  elseif phase ~= '' then
    redis.call('ZREM', waits, job_id)
  end
  local snapshot = redis.call('HGETALL', record)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event, 'extra', extra, unpack(snapshot))
  local ttl = redis.call('PTTL', record)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
  return 1
end

local function read_changes(argv, first, last)
  local n = tonumber(argv[first])
  local fields = {}
  for i = 1, n do fields[i] = argv[first + i] end
  local drop = {}
  for i = first + n + 1, last do drop[#drop + 1] = argv[i] end
  return fields, drop
end

local function transition_argv(record, stream, argv, first, last)
  local fields, drop = read_changes(argv, first + 10, last)
  return transition(record, stream, argv[first], argv[first + 1], argv[first + 2], argv[first + 3],
    argv[first + 4], argv[first + 5], argv[first + 6], argv[first + 7], argv[first + 8], argv[first + 9],
    fields, drop)
end
