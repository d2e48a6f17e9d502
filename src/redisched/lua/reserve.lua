-- reserve: promote due jobs, then lease up to count ready jobs, each under a fresh token.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] errors hash
-- KEYS[6] meta hash
-- KEYS[7] feed stream
-- ARGV[1] now_ms int|empty
-- ARGV[2] count int
-- ARGV[3] ttr_ms int|empty
-- ARGV[4] promote_limit int
-- Returns: [now_ms, next_due_ms, next_timeout_ms, job...]. next_due_ms is the run_at of the
--   earliest scheduled job and next_timeout_ms the earliest reservation deadline, each -1 when
--   there is none, so that a caller can sleep exactly until there is work. Each job is the
--   array of get.lua with its token set and state reserved. A paused topic leases nothing.
--   Order: lowest priority number first, then the order in which jobs became ready (due jobs
--   are promoted in run_at order). Empty ttr_ms uses each job's own ttr. Each leased job
--   gets a reserved event.
-- Complexity: O((P + N) log M) for P promoted and N leased jobs.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local errors_key, meta_key, feed_key = KEYS[5], KEYS[6], KEYS[7]
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
local count = tonumber(ARGV[2])
local ttr_override = tonumber(ARGV[3])
local promote_limit = tonumber(ARGV[4])
if not count or count < 1 or not promote_limit or promote_limit < 0 then
  return redis.error_reply('ERR reserve: count must be >= 1 and promote_limit >= 0')
end

local function earliest(key)
  local head = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return tonumber(head[2]) or -1
end

local reply = {now, -1, -1}
if redis.call('HGET', meta_key, 'paused') == '1' then
  reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key)
  return reply
end

-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local LOG = 10
local EVENT = {put = 1, replaced = 2, reserved = 3, released = 4, requeued = 5, retried = 6,
  touched = 7, buried = 8, dead = 9, kicked = 10, acked = 11, deleted = 12, pulled = 13,
  expired = 14}
local EVENT_FORMAT, EVENT_HEADER, MAX_EVENTS, MAX_DETAIL = '>BdIIH', 19, 16, 200
local FEED_FIELDS, FEED_SLACK, FEED_TRIM = 12, 100, 4
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'keep_finished',
  'keep_finished_for_ms', 'keep_dead', 'keep_dead_for_ms')
local history_on = settings[1] ~= '0'
local keep_events = tonumber(settings[2]) or 10000
local feed = {}
local function encode(job)
  return cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY))
end

-- A scheduled job unchanged since its put keeps no log: its SEQ holds run_at - the put's time
-- (ms), which keeps a fresh job's record in a smaller allocation. decode() turns that back
-- into a log with the put event, so the rest of a script never sees the difference.
local function materialize(job)
  if not history_on or job[LOG] or job[STATE] ~= SCHEDULED or job[SEQ] == 0 then return end
  job[LOG] = '\1' .. struct.pack(EVENT_FORMAT, EVENT.put, job[RUN_AT] - job[SEQ],
    job[VERSION], 0, 0)
  job[SEQ] = 0
end
local decode_record = decode
decode = function(raw)
  local job = decode_record(raw)
  materialize(job)
  return job
end

-- The position just after the event that starts at `at` in a log string.
local function event_end(log, at)
  return at + EVENT_HEADER + struct.unpack('>H', log, at + EVENT_HEADER - 2)
end

-- Records that `kind` happened to job (a decoded record) now; detail is nil or text.
local function add_event(id, job, kind, detail)
  if not history_on then
    job[LOG] = nil
    return
  end
  detail = string.sub(detail or '', 1, MAX_DETAIL)
  local log = job[LOG] or '\0'
  local count = struct.unpack('>B', log)
  if count >= MAX_EVENTS then -- the first event (put) stays, the second goes
    local second = event_end(log, 2)
    log = string.sub(log, 1, second - 1) .. string.sub(log, event_end(log, second))
    count = count - 1
  end
  job[LOG] = struct.pack('>B', count + 1) .. string.sub(log, 2)
    .. struct.pack(EVENT_FORMAT, EVENT[kind], now, job[VERSION], job[ATTEMPTS], #detail) .. detail
  if keep_events > 0 then
    local n = #feed
    feed[n + 1], feed[n + 2], feed[n + 3], feed[n + 4] = 'j', id, 'k', kind
    feed[n + 5], feed[n + 6], feed[n + 7], feed[n + 8] = 't', now, 'v', job[VERSION]
    feed[n + 9], feed[n + 10], feed[n + 11], feed[n + 12] = 'a', job[ATTEMPTS], 'd', detail
  end
end

-- Adds this call's events to the topic's feed as one entry. Its id is now_ms-0 when that is
-- free (a fixed clock gives fixed ids), else the next one Redis picks. meta feed_events counts
-- the feed's events; past keep_events + FEED_SLACK the oldest entries go (FEED_TRIM at most).
local function flush_feed()
  if #feed == 0 then return end
  local added = redis.pcall('XADD', feed_key, now .. '-0', unpack(feed))
  if type(added) == 'table' and added.err then
    redis.call('XADD', feed_key, '*', unpack(feed))
  end
  local size = redis.call('HINCRBY', meta_key, 'feed_events', #feed / FEED_FIELDS)
  feed = {}
  if size <= keep_events + FEED_SLACK then return end
  local gone, ids = 0, {}
  for _, entry in ipairs(redis.call('XRANGE', feed_key, '-', '+', 'COUNT', FEED_TRIM)) do
    if size - gone <= keep_events then break end
    gone, ids[#ids + 1] = gone + #entry[2] / FEED_FIELDS, entry[1]
  end
  if #ids > 0 then
    redis.call('XDEL', feed_key, unpack(ids))
    redis.call('HINCRBY', meta_key, 'feed_events', -gone)
  end
end

local due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', 0, promote_limit)
if #due > 0 then
  local seq = redis.call('HINCRBY', meta_key, 'seq', #due) - #due
  for _, id in ipairs(due) do
    seq = seq + 1
    local job = decode(redis.call('HGET', jobs_key, id))
    job[STATE], job[SEQ] = READY, seq
    redis.call('HSET', jobs_key, id, encode(job))
    redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', seq) .. id)
  end
  redis.call('ZREM', scheduled_key, unpack(due))
end

local members = redis.call('ZRANGE', ready_key, 0, count - 1)
if #members > 0 then
  redis.call('ZREMRANGEBYRANK', ready_key, 0, #members - 1)
  local token = redis.call('HINCRBY', meta_key, 'seq', #members) - #members
  for _, member in ipairs(members) do
    token = token + 1
    local id = string.sub(member, 13)
    local job = decode(redis.call('HGET', jobs_key, id))
    job[STATE], job[ATTEMPTS], job[SEQ] = RESERVED, job[ATTEMPTS] + 1, token
    local reserved_until = now + (ttr_override or job[TTR])
    add_event(id, job, 'reserved')
    redis.call('HSET', jobs_key, id, encode(job))
    redis.call('ZADD', reserved_key, reserved_until, id)
    reply[#reply + 1] = {id, 'reserved', job[VERSION], job[ATTEMPTS], job[PRIORITY], job[TTR],
      job[MAX_ATTEMPTS], job[RUN_AT], tostring(token), reserved_until,
      redis.call('HGET', errors_key, id), job[BODY], 0}
  end
  redis.call('HINCRBY', meta_key, 'total_reserved', #members)
end
reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key)
flush_feed()
return reply
