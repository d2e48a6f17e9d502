-- touch: extend a reservation, so that a long attempt keeps its job.
-- KEYS[1] jobs hash
-- KEYS[2] reserved zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] token string
-- ARGV[4] ttr_ms int|empty
-- Returns: [status, reserved_until_ms]. status: 1 touched (the reservation now ends at
--   now + ttr_ms, or now + the job's ttr when ttr_ms is empty), 0 stale token (nothing changed).
-- Complexity: O(log M).
local jobs_key, reserved_key = KEYS[1], KEYS[2]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local STALE, TOUCHED = 0, 1
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, token, ttr_override = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {STALE, 0} end
local job = decode(raw)
if job[STATE] ~= RESERVED or job[SEQ] ~= token then return {STALE, 0} end
local reserved_until = now + (ttr_override or job[TTR])
redis.call('ZADD', reserved_key, reserved_until, id)
return {TOUCHED, reserved_until}
