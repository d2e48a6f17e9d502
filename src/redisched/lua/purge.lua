-- purge: delete up to limit jobs in one state (call again until fewer than limit go).
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] state string
-- ARGV[3] limit int|empty
-- Returns: [deleted, left]: the jobs this call deleted, and how many are still in that state.
--   States as jobs.lua lists them (a scheduled job whose run_at has passed is ready). A
--   reserved job's holder gets a stale reply on ack/release/touch/bury; the Python API purges
--   reserved jobs only when a topic is deleted with force. Empty limit: 200.
-- Complexity: O(limit log M).
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local DEFAULT_LIMIT = 200
local state_name = ARGV[2]
local limit = ARGV[3] == '' and DEFAULT_LIMIT or tonumber(ARGV[3])
if not limit or limit < 1 or limit > 10000 then
  return redis.error_reply('ERR purge: limit must be 1 to 10000')
end
local READY_MEMBER_PREFIX = 12 -- a ready member is a %012x sequence number, then the id

local ids = {}
-- Takes up to n members from ranks first.. of a sorted set, removing them; returns how many.
local function take(key, first, n, strip)
  if n < 1 then return 0 end
  local members = redis.call('ZRANGE', key, first, first + n - 1)
  if #members > 0 then redis.call('ZREMRANGEBYRANK', key, first, first + #members - 1) end
  for _, member in ipairs(members) do
    ids[#ids + 1] = strip and string.sub(member, strip + 1) or member
  end
  return #members
end

local due = redis.call('ZCOUNT', scheduled_key, '-inf', now)
local left
if state_name == 'scheduled' then
  take(scheduled_key, due, limit)
  left = redis.call('ZCARD', scheduled_key) - due
elseif state_name == 'ready' then
  local got = take(ready_key, 0, limit, READY_MEMBER_PREFIX)
  local from_due = take(scheduled_key, 0, math.min(due, limit - got))
  left = redis.call('ZCARD', ready_key) + due - from_due
elseif state_name == 'reserved' then
  take(reserved_key, 0, limit)
  left = redis.call('ZCARD', reserved_key)
elseif state_name == 'dead' then
  take(dead_key, 0, limit)
  left = redis.call('ZCARD', dead_key)
else
  return redis.error_reply('ERR purge: state must be scheduled, ready, reserved or dead')
end

-- unpack() takes a bounded number of values: delete in slices
local SLICE = 1000
for start = 1, #ids, SLICE do
  local slice = {unpack(ids, start, math.min(start + SLICE - 1, #ids))}
  redis.call('HDEL', jobs_key, unpack(slice))
  redis.call('HDEL', pending_key, unpack(slice))
  redis.call('HDEL', errors_key, unpack(slice))
end
return {#ids, left}
