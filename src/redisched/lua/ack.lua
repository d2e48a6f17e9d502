-- ack: finish reserved jobs; a replacement that waited for the attempt is scheduled.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] pending hash
-- KEYS[6] errors hash
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string...
-- ARGV[3] token string...
-- Returns: an array with one status per (id, token) pair: 1 acked, 0 stale (the token is not
--   the job's current reservation: it was requeued, re-reserved, deleted or already acked;
--   nothing changed). ARGV[2..3] repeat per job.
-- Complexity: O(N log M) for N jobs.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending_key, errors_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
if #ARGV < 3 or #ARGV % 2 ~= 1 then
  return redis.error_reply('ERR ack: expected id/token pairs')
end

-- A waiting replacement becomes scheduled (or ready, when due) as the attempt ends.
local function place_pending(id, pending)
  local _, version, _, priority, ttr, max_attempts, run_at, _, body =
    cmsgpack.unpack(pending)
  redis.call('HDEL', pending_key, id)
  if run_at <= now then
    local seq = redis.call('HINCRBY', meta_key, 'seq', 1)
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
end

local reply, acked = {}, 0
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], tonumber(ARGV[i + 1])
  local raw = redis.call('HGET', jobs_key, id)
  local status = 0
  if raw then
    local state, _, _, _, _, _, _, current_token = cmsgpack.unpack(raw)
    if state == 3 and current_token == token then
      status, acked = 1, acked + 1
      redis.call('ZREM', reserved_key, id)
      redis.call('HDEL', errors_key, id)
      local pending = redis.call('HGET', pending_key, id)
      if pending then
        place_pending(id, pending)
      else
        redis.call('HDEL', jobs_key, id)
      end
    end
  end
  reply[#reply + 1] = status
end
if acked > 0 then redis.call('HINCRBY', meta_key, 'total_acked', acked) end
return reply
