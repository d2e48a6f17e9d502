-- get: read one job by id, without its reservation token.
-- KEYS[1] jobs hash
-- KEYS[2] reserved zset
-- KEYS[3] pending hash
-- KEYS[4] errors hash
-- KEYS[5] meta hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- Returns: nil when there is no such job, else the job array [id, state, version, attempts,
--   priority, ttr_ms, max_attempts, run_at_ms, token, reserved_until_ms, last_error, body,
--   pending_version]. state is scheduled|ready|reserved|dead (a scheduled job
--   whose run_at has passed reads as ready); token is always nil here; reserved_until_ms is nil
--   unless reserved; last_error is nil or text; pending_version is 0 or the version of a
--   replacement waiting for the running attempt to end. When there is no such job and the
--   topic is spread over partitions (meta field partitions: its jobs live in their ids'
--   partitions), the partition count, an integer, instead of nil (meta is read only then).
-- Complexity: O(1).
local jobs_key, reserved_key, pending_key, errors_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local meta_key = KEYS[5]
if #KEYS ~= 5 then return redis.error_reply('ERR get: expected 5 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local STATE_NAMES = {[SCHEDULED] = 'scheduled', [READY] = 'ready', [RESERVED] = 'reserved',
  [DEAD] = 'dead'}
local id = ARGV[2]
local now = tonumber(ARGV[1])
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR get: now_ms must be an integer >= 0') end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR get: now_ms must be an integer >= 0')
end

local raw = redis.call('HGET', jobs_key, id)
if not raw then
  -- a read by id of a partitioned topic's name finds nothing there: said, not a quiet nil (a
  -- job put before the mark is still found where it is)
  local partitions = redis.call('HGET', meta_key, 'partitions')
  return partitions and partitions + 0 or nil
end
local job = decode(raw)
local state = job[STATE]
if state == SCHEDULED and job[RUN_AT] <= now then state = READY end
local reserved_until = false
if state == RESERVED then reserved_until = tonumber(redis.call('ZSCORE', reserved_key, id)) end
local pending_version = 0
local pending = redis.call('HGET', pending_key, id)
if pending then pending_version = decode(pending)[VERSION] end
return {id, STATE_NAMES[state], job[VERSION], job[ATTEMPTS], job[PRIORITY], job[TTR],
  job[MAX_ATTEMPTS], job[RUN_AT], false, reserved_until, redis.call('HGET', errors_key, id),
  job[BODY], pending_version}
