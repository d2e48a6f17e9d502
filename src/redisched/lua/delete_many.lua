-- delete_many: remove jobs by id, only those still in the given state (or in any state).
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] state string|empty
-- ARGV[3] id string...
-- Returns: the number of jobs deleted. With a state, a job found in another state (it moved
--   since it was listed) is left as it is; a scheduled job whose run_at has passed is ready,
--   as jobs.lua lists it. Empty state deletes in any state, as delete.lua does.
-- Complexity: O(N log M) for N ids.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
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
local STATES = {scheduled = SCHEDULED, ready = READY, reserved = RESERVED, dead = DEAD}
local wanted = STATES[ARGV[2]]
if ARGV[2] ~= '' and not wanted then
  return redis.error_reply('ERR delete_many: state must be scheduled, ready, reserved or dead')
end

local deleted = 0
for i = 3, #ARGV, 1 do
  local id = ARGV[i]
  local raw = redis.call('HGET', jobs_key, id)
  if raw then
    local job = decode(raw)
    local state = job[STATE]
    local shown = state
    if state == SCHEDULED and job[RUN_AT] <= now then shown = READY end
    if not wanted or shown == wanted then
      if state == SCHEDULED then
        redis.call('ZREM', scheduled_key, id)
      elseif state == READY then
        redis.call('ZREM', ready_key, string.format('%012x', job[SEQ]) .. id)
      elseif state == RESERVED then
        redis.call('ZREM', reserved_key, id)
      else
        redis.call('ZREM', dead_key, id)
      end
      redis.call('HDEL', jobs_key, id)
      redis.call('HDEL', pending_key, id)
      redis.call('HDEL', errors_key, id)
      deleted = deleted + 1
    end
  end
end
return deleted
