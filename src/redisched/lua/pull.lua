-- pull: take the next ready job and delete it at once (at-most-once delivery).
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] errors hash
-- KEYS[5] meta hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] promote_limit int
-- Returns: nil when no job is ready (or the topic is paused), else the job array of get.lua
--   with state ready and attempts counting this delivery. The job no longer exists afterwards.
-- Complexity: O((P + 1) log M) for P promoted jobs.
local jobs_key, scheduled_key, ready_key, errors_key, meta_key = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local promote_limit = tonumber(ARGV[2])
if not promote_limit or promote_limit < 0 then
  return redis.error_reply('ERR pull: promote_limit must be >= 0')
end
if redis.call('HGET', meta_key, 'paused') == '1' then return nil end

-- Only the best due job matters: compare the head of ready with the earliest due job, whose
-- priority is read from its record, instead of promoting everything that is due.
local head = redis.call('ZRANGE', ready_key, 0, 0, 'WITHSCORES')
local due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', 0, promote_limit)
local best_id, best_from_ready = nil, false
if head[1] then best_id, best_from_ready = string.sub(head[1], 13), true end
local best_priority = tonumber(head[2])
for _, id in ipairs(due) do
  local priority = decode(redis.call('HGET', jobs_key, id))[PRIORITY]
  if not best_priority or priority < best_priority then
    best_id, best_from_ready, best_priority = id, false, priority
  end
end
if not best_id then return nil end

local job = decode(redis.call('HGET', jobs_key, best_id))
if best_from_ready then
  redis.call('ZREM', ready_key, head[1])
else
  redis.call('ZREM', scheduled_key, best_id)
end
local last_error = redis.call('HGET', errors_key, best_id)
redis.call('HDEL', jobs_key, best_id)
redis.call('HDEL', errors_key, best_id)
redis.call('HINCRBY', meta_key, 'total_pulled', 1)
return {best_id, 'ready', job[VERSION], job[ATTEMPTS] + 1, job[PRIORITY], job[TTR],
  job[MAX_ATTEMPTS], job[RUN_AT], false, false, last_error, job[BODY], 0}
