-- pull: take the next ready job and delete it at once (at-most-once delivery).
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] errors hash
-- KEYS[5] meta hash
-- KEYS[6] schedules hash
-- KEYS[7] refill zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] promote_limit int|empty
-- Returns: nil when no job is ready (or the topic is paused), else the job array of get.lua
--   with state ready and attempts counting this delivery. The job no longer exists afterwards.
--   Pulling the pending occurrence of a schedule puts its next occurrence (see schedule.lua).
-- Complexity: O((P + 1) log M) for P promoted jobs.
local jobs_key, scheduled_key, ready_key, errors_key, meta_key = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
local schedules_key, refill_key = KEYS[6], KEYS[7]
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
local DEFAULT_PROMOTE_LIMIT = 1000
local promote_limit = ARGV[2] == '' and DEFAULT_PROMOTE_LIMIT or tonumber(ARGV[2])
if not promote_limit or promote_limit < 0 then
  return redis.error_reply('ERR pull: promote_limit must be >= 0')
end
if redis.call('HGET', meta_key, 'paused') == '1' then return nil end

-- Schedules: leasing a schedule's pending occurrence puts its next one, in this same step.
local S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR, S_MAX_ATTEMPTS, S_BODY,
  S_TIMES = 2, 3, 4, 5, 6, 7, 8, 9, 10, 14
local REFILL_BELOW = 16  -- fewer cron times left: the glue is asked to compute more
-- An occurrence's id names its UTC time: <schedule id>@YYYY-MM-DDTHH:MM:SSZ.
local function iso(ms)
  local s = math.floor(ms / 1000)
  local days, sod = math.floor(s / 86400), s % 86400
  local z = days + 719468  -- civil date from days (H. Hinnant's algorithm)
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', year, month, day,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60)
end
local function advance_schedule(id)
  if not string.find(id, '@', 1, true) then return end
  local at = string.find(id, '@[^@]*$')
  local sid = string.sub(id, 1, at - 1)
  local raw = redis.call('HGET', schedules_key, sid)
  if not raw then return end
  local s = {cmsgpack.unpack(raw)}
  if s[S_NEXT] == 0 or string.sub(id, at + 1) ~= iso(s[S_NEXT]) then return end
  local after, next_at = math.max(now, s[S_NEXT]), 0
  if s[S_EVERY] > 0 then  -- missed occurrences collapse: the next one is in the future
    next_at = s[S_ANCHOR] + (math.floor((after - s[S_ANCHOR]) / s[S_EVERY]) + 1) * s[S_EVERY]
  else
    local times = s[S_TIMES]
    while #times > 0 and times[1] <= after do table.remove(times, 1) end
    next_at = table.remove(times, 1) or 0
    if #times < REFILL_BELOW then redis.call('ZADD', refill_key, 'NX', now, sid) end
  end
  if s[S_END_AT] > 0 and next_at > s[S_END_AT] then next_at = 0 end
  s[S_LAST], s[S_NEXT] = s[S_NEXT], next_at
  redis.call('HSET', schedules_key, sid, cmsgpack.pack(unpack(s, 1, S_TIMES)))
  if next_at == 0 then return end
  local occurrence, job = sid .. '@' .. iso(next_at), {}
  job[STATE], job[VERSION], job[ATTEMPTS], job[PRIORITY] = SCHEDULED, 1, 0, s[S_PRIORITY]
  job[TTR], job[MAX_ATTEMPTS], job[RUN_AT], job[SEQ] = s[S_TTR], s[S_MAX_ATTEMPTS], next_at, 0
  job[BODY] = s[S_BODY]
  if redis.call('HSETNX', jobs_key, occurrence, encode(job)) == 1 then  -- an id, not a double
    redis.call('ZADD', scheduled_key, next_at, occurrence)
  end
end

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
advance_schedule(best_id)
return {best_id, 'ready', job[VERSION], job[ATTEMPTS] + 1, job[PRIORITY], job[TTR],
  job[MAX_ATTEMPTS], job[RUN_AT], false, false, last_error, job[BODY], 0}
