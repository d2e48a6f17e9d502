-- requeue: return timed-out reservations to the queue, or to dead when attempts are used up.
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
-- ARGV[2] limit int
-- Returns: [requeued, dead, next_timeout_ms]: how many jobs went back to the queue and to dead,
--   and the earliest reservation deadline still ahead (-1 when none). A job goes back after
--   the topic's backoff (meta backoff_ms * 2^(attempts-1), at most backoff_max_ms; default 0),
--   and a replacement that waited for the attempt is scheduled in its place. Idempotent; safe
--   to run from every process.
-- Complexity: O(N log M) for N expired reservations, N <= limit.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key, meta_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local wake_channel = KEYS[9]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[2])
if not limit or limit < 1 then return redis.error_reply('ERR requeue: limit must be >= 1') end

local expired = redis.call('ZRANGEBYSCORE', reserved_key, '-inf', now, 'LIMIT', 0, limit)
local config = redis.call('HMGET', meta_key, 'backoff_ms', 'backoff_max_ms')
local backoff, backoff_max = tonumber(config[1]) or 0, tonumber(config[2]) or 3600000
local requeued, dead, woke_ready, earliest = 0, 0, false, nil

for _, id in ipairs(expired) do
  redis.call('ZREM', reserved_key, id)
  local job = decode(redis.call('HGET', jobs_key, id))
  local pending = redis.call('HGET', pending_key, id)
  if pending then
    job = decode(pending)
    redis.call('HDEL', pending_key, id)
    redis.call('HDEL', errors_key, id)
  elseif job[MAX_ATTEMPTS] > 0 and job[ATTEMPTS] >= job[MAX_ATTEMPTS] then
    job[STATE], job[SEQ] = DEAD, 0
    redis.call('HSET', errors_key, id,
      'reservation timed out after ' .. job[ATTEMPTS] .. ' attempts')
    redis.call('ZADD', dead_key, now, id)
    redis.call('HSET', jobs_key, id, encode(job))
    dead = dead + 1
  else
    job[RUN_AT] = now + math.min(backoff * 2 ^ (job[ATTEMPTS] - 1), backoff_max)
  end
  if job[STATE] ~= DEAD then
    requeued = requeued + 1
    if job[RUN_AT] <= now then
      job[STATE], job[SEQ] = READY, redis.call('HINCRBY', meta_key, 'seq', 1)
      redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', job[SEQ]) .. id)
      woke_ready = true
    else
      job[STATE], job[SEQ] = SCHEDULED, 0
      redis.call('ZADD', scheduled_key, job[RUN_AT], id)
      if not earliest or job[RUN_AT] < earliest then earliest = job[RUN_AT] end
    end
    redis.call('HSET', jobs_key, id, encode(job))
  end
end
if woke_ready then
  redis.call('PUBLISH', wake_channel, '0')
elseif earliest then
  redis.call('PUBLISH', wake_channel, tostring(earliest))
end
if dead > 0 then redis.call('HINCRBY', meta_key, 'total_dead', dead) end
if requeued > 0 then redis.call('HINCRBY', meta_key, 'total_requeued', requeued) end
local head = redis.call('ZRANGE', reserved_key, 0, 0, 'WITHSCORES')
return {requeued, dead, tonumber(head[2]) or -1}
