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
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local id, token, ttr_override = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {0, 0} end
local state, _, _, _, ttr, _, _, seq = cmsgpack.unpack(raw)
if state ~= 3 or seq ~= token then return {0, 0} end
local reserved_until = now + (ttr_override or ttr)
redis.call('ZADD', reserved_key, reserved_until, id)
return {1, reserved_until}
