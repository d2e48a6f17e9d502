-- touch: extend a reservation, so that a long attempt keeps its job.
-- KEYS[1] jobs hash
-- KEYS[2] reserved zset
-- KEYS[3] meta hash
-- KEYS[4] feed stream
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] token string
-- ARGV[4] ttr_ms int|empty
-- Returns: [status, reserved_until_ms]. status: 1 touched (the reservation now ends at
--   now + ttr_ms, or now + the job's ttr when ttr_ms is empty), 0 stale token (nothing changed).
--   The job gets a touched event; a touch right after a touch updates that event's time
--   instead of adding one (heartbeats do not flood the job's events or the feed).
-- Complexity: O(log M).
local jobs_key, reserved_key, meta_key, feed_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
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
-- History (lua/README.md, "History"): an event goes into the job's record (job[LOG]: its first
-- event and its last MAX_EVENTS - 1) and into the topic's feed, a capped stream.
local LOG = 10
local EVENT = {put = 1, replaced = 2, reserved = 3, released = 4, requeued = 5, retried = 6,
  touched = 7, buried = 8, dead = 9, kicked = 10, acked = 11, deleted = 12, pulled = 13,
  expired = 14}
local MAX_EVENTS, MAX_DETAIL = 16, 200
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'keep_finished',
  'keep_finished_for_ms', 'keep_dead', 'keep_dead_for_ms')
local history_on = settings[1] ~= '0'
local keep_events = tonumber(settings[2]) or 10000
local function encode(job)
  return cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY))
end

-- Records that `kind` happened to job (a decoded record) now; detail is nil or text.
local function add_event(id, job, kind, detail)
  if not history_on then
    job[LOG] = nil
    return
  end
  if detail and #detail > MAX_DETAIL then detail = string.sub(detail, 1, MAX_DETAIL) end
  local log = job[LOG] or {}
  if #log >= MAX_EVENTS then table.remove(log, 2) end
  log[#log + 1] = {EVENT[kind], now, job[VERSION], job[ATTEMPTS], detail}
  job[LOG] = log
  if keep_events > 0 then
    local fields = {'j', id, 'k', kind, 't', now, 'v', job[VERSION], 'a', job[ATTEMPTS]}
    if detail then fields[11], fields[12] = 'd', detail end
    redis.call('XADD', feed_key, 'MAXLEN', '~', keep_events, '*', unpack(fields))
  end
end

local id, token, ttr_override = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])

local raw = redis.call('HGET', jobs_key, id)
if not raw then return {STALE, 0} end
local job = decode(raw)
if job[STATE] ~= RESERVED or job[SEQ] ~= token then return {STALE, 0} end
local reserved_until = now + (ttr_override or job[TTR])
redis.call('ZADD', reserved_key, reserved_until, id)
local log = job[LOG]
if history_on and log and log[#log][1] == EVENT.touched then
  log[#log][2] = now
else
  add_event(id, job, 'touched')
end
redis.call('HSET', jobs_key, id, encode(job))
return {TOUCHED, reserved_until}
