-- get: read one job by id, without its reservation token.
-- KEYS[1] jobs hash
-- KEYS[2] reserved zset
-- KEYS[3] pending hash
-- KEYS[4] errors hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- Returns: nil when there is no such job, else the job array [id, state, version, attempts,
--   priority, ttr_ms, max_attempts, run_at_ms, token, reserved_until_ms, last_error, body,
--   pending_version]. state is scheduled|ready|reserved|dead (a scheduled job
--   whose run_at has passed reads as ready); token is always nil here; reserved_until_ms is nil
--   unless reserved; last_error is nil or text; pending_version is 0 or the version of a
--   replacement waiting for the running attempt to end.
-- Complexity: O(1).
local jobs_key, reserved_key, pending_key, errors_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id = ARGV[2]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local raw = redis.call('HGET', jobs_key, id)
if not raw then return nil end
local state, version, attempts, priority, ttr, max_attempts, run_at, _, body =
  cmsgpack.unpack(raw)
local STATE_NAMES = {'scheduled', 'ready', 'reserved', 'dead'}
if state == 1 and run_at <= now then state = 2 end
local reserved_until = false
if state == 3 then reserved_until = tonumber(redis.call('ZSCORE', reserved_key, id)) end
local pending_version = 0
local pending = redis.call('HGET', pending_key, id)
if pending then pending_version = select(2, cmsgpack.unpack(pending)) end
return {id, STATE_NAMES[state], version, attempts, priority, ttr, max_attempts, run_at, false,
  reserved_until, redis.call('HGET', errors_key, id), body, pending_version}
