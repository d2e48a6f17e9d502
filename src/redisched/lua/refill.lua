-- refill: give a cron schedule more upcoming times; put its next occurrence if it ran dry.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] schedules hash
-- KEYS[4] refill zset
-- KEYS[5] meta hash
-- KEYS[6] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] version int
-- ARGV[4] time int...
-- Returns: [status, next_ms]. status: 1 refilled, 0 stale (no such schedule, another version,
--   or an interval schedule: nothing changed but the refill set). The times (ascending UTC ms
--   computed by the glue) later than the ones held are appended. A schedule with no pending
--   occurrence (it ran out of times before a refill) gets the first time after now:
--   missed times are skipped. No times at all ends a schedule that ran dry (its end_at came).
--   The schedule leaves the refill set.
-- Complexity: O(T + log M) for T times.
local jobs_key, scheduled_key, schedules_key, refill_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local meta_key, wake_channel = KEYS[5], KEYS[6]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local STALE, REFILLED = 0, 1
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, version = ARGV[2], tonumber(ARGV[3])
if not version then return redis.error_reply('ERR refill: version must be an integer') end
local times = {}
for i = 4, #ARGV, 1 do
  local time = tonumber(ARGV[i])
  if not time or time % 1000 ~= 0 then
    return redis.error_reply('ERR refill: times must be whole seconds')
  end
  times[#times + 1] = time
end

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

-- Puts the occurrence of schedule s at `at` (create-only: an existing id is left alone).
local function put_occurrence(id, at, s)
  local job = {}
  job[STATE], job[VERSION], job[ATTEMPTS], job[PRIORITY] = SCHEDULED, 1, 0, s[S_PRIORITY]
  job[TTR], job[MAX_ATTEMPTS], job[RUN_AT], job[SEQ] = s[S_TTR], s[S_MAX_ATTEMPTS], at, 0
  job[BODY] = s[S_BODY]
  if redis.call('HSETNX', jobs_key, id, encode(job)) == 0 then return false end
  redis.call('ZADD', scheduled_key, at, id)
  return true
end

redis.call('ZREM', refill_key, id)
local raw = redis.call('HGET', schedules_key, id)
if not raw then return {STALE, 0} end
local s = {cmsgpack.unpack(raw)}
if s[S_VERSION] ~= version or s[S_EVERY] > 0 then return {STALE, s[S_NEXT]} end

local held = s[S_TIMES]
local latest = math.max(held[#held] or 0, s[S_NEXT], s[S_LAST])
for _, time in ipairs(times) do
  if time > latest then
    held[#held + 1] = time
    latest = time
  end
end
if s[S_NEXT] == 0 then
  -- ran dry: skip the missed times, put the first one after now
  local earliest = math.max(now + 1, s[S_LAST] + 1000)
  while #held > 0 and held[1] < earliest do table.remove(held, 1) end
  local next_at = table.remove(held, 1)
  if next_at and (s[S_END_AT] == 0 or next_at <= s[S_END_AT]) then
    s[S_NEXT] = next_at
    if put_occurrence(id .. '@' .. iso(next_at), next_at, s)
        and redis.call('HGET', meta_key, 'paused') ~= '1' then
      redis.call('PUBLISH', wake_channel, tostring(next_at))
    end
  end
end
s[S_TIMES] = held
redis.call('HSET', schedules_key, id, cmsgpack.pack(unpack(s, 1, S_TIMES)))
return {REFILLED, s[S_NEXT]}
