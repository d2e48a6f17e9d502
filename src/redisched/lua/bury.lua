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
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, token, reason = ARGV[2], tonumber(ARGV[3]), ARGV[4]

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {0} end
local _ -- receives the unpacked fields this script ignores
local state, version, attempts, priority, ttr, max_attempts, run_at, seq, body =
  cmsgpack.unpack(raw)
if state ~= 3 or seq ~= token then return {0} end

redis.call('ZREM', reserved_key, id)
local pending = redis.call('HGET', pending_key, id)
if pending then
  _, version, _, priority, ttr, max_attempts, run_at, _, body = cmsgpack.unpack(pending)
  redis.call('HDEL', pending_key, id)
  redis.call('HDEL', errors_key, id)
  if run_at <= now then
    seq = redis.call('HINCRBY', meta_key, 'seq', 1)
    redis.call('ZADD', ready_key, priority, string.format('%012x', seq) .. id)
    redis.call('HSET', jobs_key, id, cmsgpack.pack(2, version, 0, priority, ttr, max_attempts,
      run_at, seq, body))
    redis.call('PUBLISH', wake_channel, '0')
  else
    redis.call('ZADD', scheduled_key, run_at, id)
    redis.call('HSET', jobs_key, id, cmsgpack.pack(1, version, 0, priority, ttr, max_attempts,
      run_at, 0, body))
    redis.call('PUBLISH', wake_channel, tostring(run_at))
  end
  return {3}
end
if reason ~= '' then redis.call('HSET', errors_key, id, reason) end
redis.call('ZADD', dead_key, now, id)
redis.call('HSET', jobs_key, id, cmsgpack.pack(4, version, attempts, priority, ttr, max_attempts,
  run_at, 0, body))
redis.call('HINCRBY', meta_key, 'total_dead', 1)
return {1}
