-- reschedule: give a job a new run_at (and priority), keeping its body: a replace.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] dead zset
-- KEYS[5] pending hash
-- KEYS[6] errors hash
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] run_at_ms int|empty
-- ARGV[4] delay_ms int|empty
-- ARGV[5] priority int|empty
-- ARGV[6] state string|empty
-- Returns: [status, version]. status: 3 replaced (scheduled or ready by the new run_at, with a
--   fresh count of attempts and no last_error, as a put with replace; version is the new one),
--   4 pending (the job is reserved: the new run_at and priority apply to the version that
--   waits for the running attempt to end), 0 no such job, 6 not in state (the job is not in
--   the given state, a scheduled job whose run_at has passed counting as ready; nothing
--   changed, version is the current one). Empty run_at_ms means now + delay_ms (empty:
--   0); empty priority keeps the job's; empty state acts in any state.
-- Complexity: O(log M).
local jobs_key, scheduled_key, ready_key, dead_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending_key, errors_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local NOT_FOUND, REPLACED, PENDING, NOT_IN_STATE = 0, 3, 4, 6
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local DEFAULT_DELAY_MS = 0
local id = ARGV[2]
local delay = ARGV[4] == '' and DEFAULT_DELAY_MS or tonumber(ARGV[4])
local run_at = tonumber(ARGV[3]) or (delay and now + delay)
local new_priority = tonumber(ARGV[5])
if not run_at or (ARGV[5] ~= '' and not new_priority) then
  return redis.error_reply('ERR reschedule: bad arguments (run_at/delay, priority)')
end
local STATES = {scheduled = SCHEDULED, ready = READY, reserved = RESERVED, dead = DEAD}
local wanted = STATES[ARGV[6]]
if ARGV[6] ~= '' and not wanted then
  return redis.error_reply('ERR reschedule: state must be scheduled, ready, reserved or dead')
end

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {NOT_FOUND, 0} end
local job = decode(raw)
local state = job[STATE]
-- a replacement waiting for the running attempt is the job's latest version: it is the one
-- to reschedule
local pending = redis.call('HGET', pending_key, id)
local latest = pending and decode(pending) or job
local shown = state
if state == SCHEDULED and job[RUN_AT] <= now then shown = READY end
if wanted and shown ~= wanted then return {NOT_IN_STATE, latest[VERSION]} end

local function ready_member(seq) return string.format('%012x', seq) .. id end
local fresh = {[STATE] = SCHEDULED, [VERSION] = latest[VERSION] + 1, [ATTEMPTS] = 0,
  [PRIORITY] = new_priority or latest[PRIORITY], [TTR] = latest[TTR],
  [MAX_ATTEMPTS] = latest[MAX_ATTEMPTS], [RUN_AT] = run_at, [SEQ] = 0, [BODY] = latest[BODY]}

if state == RESERVED then
  redis.call('HSET', pending_key, id, encode(fresh))
  return {PENDING, fresh[VERSION]}
end

if state == SCHEDULED then
  redis.call('ZREM', scheduled_key, id)
elseif state == READY then
  redis.call('ZREM', ready_key, ready_member(job[SEQ]))
else
  redis.call('ZREM', dead_key, id)
end
redis.call('HDEL', errors_key, id)
local paused = redis.call('HGET', meta_key, 'paused') == '1'
if run_at <= now then
  fresh[STATE], fresh[SEQ] = READY, redis.call('HINCRBY', meta_key, 'seq', 1)
  redis.call('ZADD', ready_key, fresh[PRIORITY], ready_member(fresh[SEQ]))
  if not paused then redis.call('PUBLISH', wake_channel, '0') end
else
  local head = tonumber(redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')[2])
  redis.call('ZADD', scheduled_key, run_at, id)
  if not paused and (not head or run_at < head) then
    redis.call('PUBLISH', wake_channel, tostring(run_at))
  end
end
redis.call('HSET', jobs_key, id, encode(fresh))
return {REPLACED, fresh[VERSION]}
