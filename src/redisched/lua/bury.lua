-- bury: end a reservation by moving the job to dead, with the reason kept as last_error.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- KEYS[8] meta hash
-- KEYS[9] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] token string
-- ARGV[4] reason string
-- Returns: [status]. status: 1 buried, 3 replaced (a replacement that waited for this attempt
--   was scheduled instead of burying the old version), 0 stale token (nothing changed).
-- Complexity: O(log M).
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key, meta_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local wake_channel = KEYS[9]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local STALE, BURIED, REPLACED = 0, 1, 3
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, token, reason = ARGV[2], tonumber(ARGV[3]), ARGV[4]

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {STALE} end
local job = decode(raw)
if job[STATE] ~= RESERVED or job[SEQ] ~= token then return {STALE} end

redis.call('ZREM', reserved_key, id)
local pending = redis.call('HGET', pending_key, id)
if pending then
  job = decode(pending)
  job[ATTEMPTS] = 0
  redis.call('HDEL', pending_key, id)
  redis.call('HDEL', errors_key, id)
  if job[RUN_AT] <= now then
    job[STATE], job[SEQ] = READY, redis.call('HINCRBY', meta_key, 'seq', 1)
    redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', job[SEQ]) .. id)
    redis.call('PUBLISH', wake_channel, '0')
  else
    job[STATE], job[SEQ] = SCHEDULED, 0
    redis.call('ZADD', scheduled_key, job[RUN_AT], id)
    redis.call('PUBLISH', wake_channel, tostring(job[RUN_AT]))
  end
  redis.call('HSET', jobs_key, id, encode(job))
  return {REPLACED}
end
if reason ~= '' then redis.call('HSET', errors_key, id, reason) end
job[STATE], job[SEQ] = DEAD, 0
redis.call('ZADD', dead_key, now, id)
redis.call('HSET', jobs_key, id, encode(job))
redis.call('HINCRBY', meta_key, 'total_dead', 1)
return {BURIED}
