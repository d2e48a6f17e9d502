-- reserve: promote due jobs, then lease up to count ready jobs, each under a fresh token.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] errors hash
-- KEYS[6] meta hash
-- KEYS[7] schedules hash
-- KEYS[8] refill zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] count int|empty
-- ARGV[3] ttr_ms int|empty
-- ARGV[4] promote_limit int|empty
-- Returns: [now_ms, next_due_ms, next_timeout_ms, job...]. next_due_ms is the run_at of the
--   earliest scheduled job and next_timeout_ms the earliest reservation deadline, each -1 when
--   there is none, so that a caller can sleep exactly until there is work. Each job is the
--   array of get.lua with its token set and state reserved. A paused topic leases nothing.
--   Order: lowest priority number first, then the order in which jobs became ready (due jobs
--   are promoted in run_at order). Empty ttr_ms uses each job's own ttr. Leasing the pending
--   occurrence of a schedule puts the schedule's next occurrence (see schedule.lua).
-- Complexity: O((P + N) log M) for P promoted and N leased jobs.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local errors_key, meta_key, schedules_key, refill_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
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
local DEFAULT_COUNT, DEFAULT_PROMOTE_LIMIT = 1, 1000
local count = ARGV[2] == '' and DEFAULT_COUNT or tonumber(ARGV[2])
local ttr_override = tonumber(ARGV[3])
local promote_limit = ARGV[4] == '' and DEFAULT_PROMOTE_LIMIT or tonumber(ARGV[4])
if not count or count < 1 or not promote_limit or promote_limit < 0 then
  return redis.error_reply('ERR reserve: count must be >= 1 and promote_limit >= 0')
end

local function earliest(key)
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(head[2]) or -1
end

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

local reply = {now, -1, -1}
if redis.call('HGET', meta_key, 'paused') == '1' then
  reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key)
  return reply
end

local due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', 0, promote_limit)
if #due > 0 then
  local seq = redis.call('HINCRBY', meta_key, 'seq', #due) - #due
  for _, id in ipairs(due) do
    seq = seq + 1
    local job = decode(redis.call('HGET', jobs_key, id))
    job[STATE], job[SEQ] = READY, seq
    redis.call('HSET', jobs_key, id, encode(job))
    redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', seq) .. id)
  end
  redis.call('ZREM', scheduled_key, unpack(due))
end

local members = redis.call('ZRANGE', ready_key, 0, count - 1)
if #members > 0 then
  redis.call('ZREMRANGEBYRANK', ready_key, 0, #members - 1)
  local token = redis.call('HINCRBY', meta_key, 'seq', #members) - #members
  for _, member in ipairs(members) do
    token = token + 1
    local id = string.sub(member, 13)
    local job = decode(redis.call('HGET', jobs_key, id))
    job[STATE], job[ATTEMPTS], job[SEQ] = RESERVED, job[ATTEMPTS] + 1, token
    local reserved_until = now + (ttr_override or job[TTR])
    redis.call('HSET', jobs_key, id, encode(job))
    redis.call('ZADD', reserved_key, reserved_until, id)
    advance_schedule(id)
    reply[#reply + 1] = {id, 'reserved', job[VERSION], job[ATTEMPTS], job[PRIORITY], job[TTR],
      job[MAX_ATTEMPTS], job[RUN_AT], tostring(token), reserved_until,
      redis.call('HGET', errors_key, id), job[BODY], 0}
  end
  redis.call('HINCRBY', meta_key, 'total_reserved', #members)
end
reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key)
return reply
