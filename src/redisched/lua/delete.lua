-- delete: remove a job by id, in any state, with any waiting replacement.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- ARGV[1] id string
-- ARGV[2] if_version int|empty
-- Returns: [status, version]. status: 1 deleted (version is the deleted one), 0 no such job,
--   5 version conflict (if_version did not match; nothing changed). The holder of a deleted
--   reservation gets a stale reply on ack/release/touch/bury.
-- Complexity: O(log M).
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local NOT_FOUND, DELETED, VERSION_CONFLICT = 0, 1, 5
local id = ARGV[1]
local if_version = tonumber(ARGV[2])

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {NOT_FOUND, 0} end
local job = decode(raw)
local version = job[VERSION]
local pending = redis.call('HGET', pending_key, id)
if pending then version = decode(pending)[VERSION] end
if if_version and if_version ~= version then return {VERSION_CONFLICT, version} end

local state = job[STATE]
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
return {DELETED, version}
