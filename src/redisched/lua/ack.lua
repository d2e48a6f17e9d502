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
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local STALE, ACKED = 0, 1
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
  local job = decode(pending)
  redis.call('HDEL', pending_key, id)
  job[ATTEMPTS] = 0
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
end

local reply, acked = {}, 0
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], tonumber(ARGV[i + 1])
  local raw = redis.call('HGET', jobs_key, id)
  local status = STALE
  if raw then
    local job = decode(raw)
    if job[STATE] == RESERVED and job[SEQ] == token then
      status, acked = ACKED, acked + 1
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
