-- put: create jobs by id, or replace them; every job of one call shares the options.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] dead zset
-- KEYS[5] pending hash
-- KEYS[6] errors hash
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] run_at_ms int|empty
-- ARGV[3] delay_ms int
-- ARGV[4] ttr_ms int|empty
-- ARGV[5] priority int
-- ARGV[6] max_attempts int|empty
-- ARGV[7] replace int
-- ARGV[8] if_version int|empty
-- ARGV[9] id string...
-- ARGV[10] body bytes...
-- Returns: a flat array [status, version] per job, in order. status: 1 created, 2 exists
--   (nothing changed, version is the current one), 3 replaced, 4 pending (the job is reserved:
--   the new version waits until the running attempt ends), 5 version conflict (if_version
--   did not match the current version; 0 when the job does not exist). ARGV[9..10] repeat per job.
--   Empty run_at_ms means now + delay_ms; empty ttr_ms / max_attempts take the topic's
--   defaults (meta fields ttr, max_attempts), else 60000 ms / 0 (unlimited).
-- Complexity: O(N log M) for N jobs in a topic of M jobs.
local jobs_key, scheduled_key, ready_key, dead_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending_key, errors_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local CREATED, EXISTS, REPLACED, PENDING, VERSION_CONFLICT = 1, 2, 3, 4, 5

local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local delay = tonumber(ARGV[3])
local run_at = tonumber(ARGV[2]) or (delay and now + delay)
local priority = tonumber(ARGV[5])
local replace = ARGV[7] == '1'
local if_version = tonumber(ARGV[8])
if not run_at or not priority or #ARGV < 10 or #ARGV % 2 ~= 0 then
  return redis.error_reply('ERR put: bad arguments (run_at/delay, priority, id/body pairs)')
end
-- One read of the topic's settings and counters, one write of the counters at the end: every
-- redis.call costs a few microseconds, and a single put is a handful of them.
local meta = redis.call('HMGET', meta_key, 'ttr', 'max_attempts', 'paused', 'seq', 'total_put')
local ttr = tonumber(ARGV[4]) or tonumber(meta[1]) or 60000
local max_attempts = tonumber(ARGV[6]) or tonumber(meta[2]) or 0
local paused = meta[3] == '1'
local jobs_in_call = (#ARGV - 8) / 2

-- All jobs of one call share run_at: either all become ready or all are scheduled. Workers
-- need a wake-up when ready was empty, or when the new run_at is the earliest.
local due_now, placed = run_at <= now, false
local ready_before, head_before
-- The topic's sequence counter (ready order and tokens): a due call takes one number per job
-- at once (unused ones leave harmless gaps), written back at the end.
local seq_start = tonumber(meta[4]) or 0
local seq_taken = seq_start
if due_now then
  ready_before = redis.call('ZCARD', ready_key)
else
  head_before = tonumber(redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')[2])
end

local function ready_member(seq, id)
  return string.format('%012x', seq) .. id
end

local function fresh(state, version, seq, body)
  return {[STATE] = state, [VERSION] = version, [ATTEMPTS] = 0, [PRIORITY] = priority,
    [TTR] = ttr, [MAX_ATTEMPTS] = max_attempts, [RUN_AT] = run_at, [SEQ] = seq, [BODY] = body}
end

-- The state and sequence number a fresh record takes: ready (with the next number) when due.
local function slot()
  if due_now then return READY, seq_taken + 1 end
  return SCHEDULED, 0
end

-- Files a stored record under scheduled or ready, by its run_at.
local function enqueue(id, seq)
  if due_now then
    seq_taken = seq
    redis.call('ZADD', ready_key, priority, ready_member(seq, id))
  else
    redis.call('ZADD', scheduled_key, run_at, id)
  end
  placed = true
end

-- Stores a fresh record for id, scheduled or ready by its run_at.
local function place(id, version, body)
  local state, seq = slot()
  redis.call('HSET', jobs_key, id, encode(fresh(state, version, seq, body)))
  enqueue(id, seq)
end

-- A create-only put without if_version writes the record only if the id is new (HSETNX):
-- one command where a look-up and a write would be two.
local create_only = not replace and not if_version

local reply = {}
for i = 9, #ARGV, 2 do
  local id, body = ARGV[i], ARGV[i + 1]
  local raw, status, version
  if create_only then
    local state, seq = slot()
    if redis.call('HSETNX', jobs_key, id, encode(fresh(state, 1, seq, body))) == 1 then
      status, version = CREATED, 1
      enqueue(id, seq)
    else
      raw = redis.call('HGET', jobs_key, id)
    end
  else
    raw = redis.call('HGET', jobs_key, id)
  end
  if status then -- created above
  elseif not raw then
    if if_version then
      status, version = VERSION_CONFLICT, 0
    else
      status, version = CREATED, 1
      place(id, version, body)
    end
  else
    local job = decode(raw)
    local current = job[VERSION]
    local pending = redis.call('HGET', pending_key, id)
    if pending then current = decode(pending)[VERSION] end
    if if_version and if_version ~= current then
      status, version = VERSION_CONFLICT, current
    elseif not replace then
      status, version = EXISTS, current
    elseif job[STATE] == RESERVED then
      status, version = PENDING, current + 1
      redis.call('HSET', pending_key, id, encode(fresh(SCHEDULED, version, 0, body)))
    else
      status, version = REPLACED, current + 1
      if job[STATE] == SCHEDULED then
        redis.call('ZREM', scheduled_key, id)
      elseif job[STATE] == READY then
        redis.call('ZREM', ready_key, ready_member(job[SEQ], id))
      else
        redis.call('ZREM', dead_key, id)
      end
      redis.call('HDEL', errors_key, id)
      place(id, version, body)
    end
  end
  reply[#reply + 1] = status
  reply[#reply + 1] = version
end

-- %d: a Lua number passed as is would be written as 1e+14 from 10^14 on (not an integer)
local counters = {'total_put', string.format('%d', (tonumber(meta[5]) or 0) + jobs_in_call)}
if due_now then counters[3], counters[4] = 'seq', string.format('%d', seq_start + jobs_in_call) end
redis.call('HSET', meta_key, unpack(counters))
if placed and not paused then
  if due_now and ready_before == 0 then
    redis.call('PUBLISH', wake_channel, '0')
  elseif not due_now and (not head_before or run_at < head_before) then
    redis.call('PUBLISH', wake_channel, tostring(run_at))
  end
end
return reply
