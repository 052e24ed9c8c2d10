--[[
  The state transition every change of a job goes through (arq_jobs._jobs.transitions): it updates
  the job's record, the listing indexes and the job's event stream together.

  transition(record, stream, index_prefix, retry_waits_prefix, job_id, event, phase, now, horizon,
             maxlen, extra, created, keep, events_keep, keep_count, stats_prefix, stats_minutes_ttl,
             stats_hours_ttl, run_ms, wait_ms, fields, drop) -> 0 | 1
    Answers 0 and writes nothing when the record does not exist. Else: sets `fields` (a flat list
    of field, value) and deletes `drop` (field names) on the record; at creation (`created` '1')
    adds the job to the `all`, `queue:<q>` and `task:<t>` indexes (and `owner:<o>` when the record
    names an owner, the API key that made it); when `phase` is not '' and not
    the record's phase, moves the job from its old phase's indexes (`phase:<p>` and
    `phase:<p>:queue:<q>`) to the new ones and notes the phase on the record; keeps
    `retry-waits:<q>` (a `retrying` event adds the job, scored by its next attempt; any other
    phase change removes it); appends `event` with `extra` and a snapshot of the record to the
    stream (MAXLEN ~ maxlen) and gives the stream the record's TTL.
    Index entries are scored by the job's run time. Trimming entries older than `horizon` ms costs
    two commands, so an index is trimmed by one write in TRIM_EVERY (chosen by the job id's last
    bytes), and index keys have no TTL (a trimmed-empty sorted set is gone; listings skip and drop
    entries whose record expired).
    An ended job (`keep` not ''): its record is kept `keep` ms and its stream `events_keep` ms (at
    most as long as the record; after that its last event is read off the record). With
    `keep_count` not '0', the queue's index of that phase (`phase:<p>:queue:<q>`) keeps its newest
    `keep_count` jobs: the older ones leave every index (`all`, `queue:<q>`, `task:<t>`, `owner:<o>`,
    `phase:<p>`) and their record, stream and ARQ's result are deleted; the job ending now stays.
    A transition that moves the job into its phase with a counted event (succeeded, failed, retrying
    → `retried`, cancelled; a failed one flagged `dead_lettered` also counts `dead_lettered`) adds
    to the statistics of its task on its queue (includes/stats.lua's stats_add, scope
    `jobs:<queue>:<task>`, at `now`), with the ending attempt's `run_ms` and `wait_ms` in the run
    and wait histograms when given (an attempt that ran; '' otherwise). Applied again, it counts
    nothing: the job is in that phase already.
    Index keys are `index_prefix` (Keys.index('')) followed by the kind; the retry waits are
    `retry_waits_prefix` (Keys.retry_waits('')) followed by the queue; the statistics
    `stats_prefix` (Keys.stats_prefix()): none is in KEYS. Include includes/stats.lua before it.

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
local F_DEAD_LETTERED = 'dead_lettered' -- mirrors arq_jobs._jobs.records.DEAD_LETTERED
local RETRYING = 'retrying' -- mirrors arq_jobs._jobs.states.JobState.RETRYING
local QUEUED = 'queued' -- mirrors arq_jobs._jobs.transitions.Phase.QUEUED

local ARQ_RESULT = 'arq:result:' -- mirrors arq_jobs._arq.RESULT_PREFIX
-- the statistics' counter of each counted event (mirrors arq_jobs._stats.reader.COUNTERS)
local COUNTED = {succeeded = 'succeeded', failed = 'failed', retrying = 'retried', cancelled = 'cancelled'}
local TRIM_EVERY = 16

-- Keeps the newest `count` jobs (by run time) of a queue's ended `phase`: the older ones leave every
-- index and their record, stream and ARQ's result are deleted; `job_id`, ending now, always stays.
local function keep_newest(index_prefix, queue, phase, count, job_id, record_prefix, stream_prefix)
  local kept = index_prefix .. 'phase:' .. phase .. ':queue:' .. queue
  local own = redis.call('ZSCORE', kept, job_id)  -- set aside: one that ran late has an old run time
  if own then redis.call('ZREM', kept, job_id) end
  local over = redis.call('ZCARD', kept) - (own and count - 1 or count)
  if over > 0 then
    local old = redis.call('ZPOPMIN', kept, over)
    for i = 1, #old, 2 do
      local id = old[i]
      local its = redis.call('HMGET', record_prefix .. id, F_TASK, F_OWNER)
      redis.call('ZREM', index_prefix .. 'phase:' .. phase, id)
      redis.call('ZREM', index_prefix .. 'all', id)
      redis.call('ZREM', index_prefix .. 'queue:' .. queue, id)
      if its[1] then redis.call('ZREM', index_prefix .. 'task:' .. its[1], id) end
      if its[2] then redis.call('ZREM', index_prefix .. 'owner:' .. its[2], id) end
      redis.call('DEL', record_prefix .. id, stream_prefix .. id, ARQ_RESULT .. id)
    end
  end
  if own then redis.call('ZADD', kept, own, job_id) end
end

local function transition(record, stream, index_prefix, retry_waits_prefix, job_id, event, phase, now,
                          horizon, maxlen, extra, created, keep, events_keep, keep_count, stats_prefix,
                          stats_minutes_ttl, stats_hours_ttl, run_ms, wait_ms, fields, drop)
  if redis.call('EXISTS', record) == 0 then return 0 end
  if #fields > 0 then redis.call('HSET', record, unpack(fields)) end
  if #drop > 0 then redis.call('HDEL', record, unpack(drop)) end
  local info = redis.call('HMGET', record, F_QUEUE, F_TASK, F_PHASE, F_SCHEDULED_FOR, F_ENQUEUED_AT,
    F_NEXT_ATTEMPT_AT, F_OWNER, F_DEAD_LETTERED)
  local queue, task, was = info[1] or '', info[2] or '', info[3]
  local score = info[4] or info[5] or now
  local trim = ((string.byte(job_id, -1) or 0) + (string.byte(job_id, -2) or 0)) % TRIM_EVERY == 0
  local cutoff = '(' .. (tonumber(now) - tonumber(horizon))
  local function add(key)
    redis.call('ZADD', key, score, job_id)
    if trim then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', cutoff)
      redis.call('PERSIST', key)  -- written with a TTL by earlier versions
    end
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
    local counter = COUNTED[event]
    if counter then
      local counts = {counter, 1}
      if event == 'failed' and info[8] == '1' then
        counts[3] = F_DEAD_LETTERED
        counts[4] = 1
      end
      if run_ms ~= '' then
        counts[#counts + 1] = 'run:' .. stats_bucket(run_ms)
        counts[#counts + 1] = 1
        counts[#counts + 1] = 'wait:' .. stats_bucket(wait_ms)
        counts[#counts + 1] = 1
      end
      stats_add(stats_prefix, 'jobs:' .. queue .. ':' .. task, now, counts, stats_minutes_ttl, stats_hours_ttl)
    end
  end
  local waits = retry_waits_prefix .. queue
  if event == RETRYING then
    redis.call('ZADD', waits, info[6] or now, job_id)
    redis.call('PEXPIRE', waits, horizon)
  elseif phase ~= '' and was == QUEUED then  -- only a waiting job can be in the retry waits
    redis.call('ZREM', waits, job_id)
  end
  local snapshot = redis.call('HGETALL', record)
  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'event', event, 'extra', extra, unpack(snapshot))
  if keep ~= '' then
    redis.call('PEXPIRE', record, keep)
    redis.call('PEXPIRE', stream, string.format('%d', math.min(tonumber(events_keep), tonumber(keep))))
    if keep_count ~= '0' and phase ~= '' then
      keep_newest(index_prefix, queue, phase, tonumber(keep_count), job_id,
        string.sub(record, 1, #record - #job_id), string.sub(stream, 1, #stream - #job_id))
    end
  else
    local ttl = redis.call('PTTL', record)
    if ttl > 0 then redis.call('PEXPIRE', stream, ttl) end
  end
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
  local fields, drop = read_changes(argv, first + 18, last)
  return transition(record, stream, argv[first], argv[first + 1], argv[first + 2], argv[first + 3],
    argv[first + 4], argv[first + 5], argv[first + 6], argv[first + 7], argv[first + 8], argv[first + 9],
    argv[first + 10], argv[first + 11], argv[first + 12], argv[first + 13], argv[first + 14],
    argv[first + 15], argv[first + 16], argv[first + 17], fields, drop)
end
