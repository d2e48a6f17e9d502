-- unschedule: delete a schedule by id and its pending occurrence; a running one is kept.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] errors hash
-- KEYS[5] schedules hash
-- KEYS[6] refill zset
-- ARGV[1] id string
-- ARGV[2] if_version int|empty
-- Returns: [status, version]. status: 1 deleted (version is the deleted one), 0 no such
--   schedule, 5 version conflict (if_version did not match; nothing changed). The pending
--   occurrence is deleted when it is scheduled or ready; a reserved (running) or dead one stays.
-- Complexity: O(log M).
local jobs_key, scheduled_key, ready_key, errors_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local schedules_key, refill_key = KEYS[5], KEYS[6]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local NOT_FOUND, DELETED, VERSION_CONFLICT = 0, 1, 5
local id, if_version = ARGV[1], tonumber(ARGV[2])

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

-- Deletes the pending occurrence of schedule s unless it is running (reserved, or dead).
local function drop_pending(sid, s)
  if s[S_NEXT] == 0 then return end
  local pending_id = sid .. '@' .. iso(s[S_NEXT])
  local raw = redis.call('HGET', jobs_key, pending_id)
  if not raw then return end
  local job = decode(raw)
  if job[STATE] == SCHEDULED then
    redis.call('ZREM', scheduled_key, pending_id)
  elseif job[STATE] == READY then
    redis.call('ZREM', ready_key, string.format('%012x', job[SEQ]) .. pending_id)
  else
    return
  end
  redis.call('HDEL', jobs_key, pending_id)
  redis.call('HDEL', errors_key, pending_id)
end

local raw = redis.call('HGET', schedules_key, id)
if not raw then return {NOT_FOUND, 0} end
local s = {cmsgpack.unpack(raw)}
if if_version and if_version ~= s[S_VERSION] then return {VERSION_CONFLICT, s[S_VERSION]} end
drop_pending(id, s)
redis.call('HDEL', schedules_key, id)
redis.call('ZREM', refill_key, id)
return {DELETED, s[S_VERSION]}
