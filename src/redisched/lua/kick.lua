-- kick: move dead jobs back to ready, with a fresh count of attempts; one by id, or the oldest.
-- KEYS[1] jobs hash
-- KEYS[2] ready zset
-- KEYS[3] dead zset
-- KEYS[4] meta hash
-- KEYS[5] wake channel
-- KEYS[6] feed stream
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string|empty
-- ARGV[3] limit int
-- Returns: the number of jobs kicked (0 when the id is not dead). last_error is kept until the
--   job is acked or replaced. Empty id kicks up to limit jobs, those that died first first.
--   Each kicked job gets a kicked event.
-- Complexity: O(N log M) for N kicked jobs.
local jobs_key, ready_key, dead_key, meta_key, wake_channel = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
local feed_key = KEYS[6]
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
local limit = tonumber(ARGV[3])
if not limit or limit < 1 then return redis.error_reply('ERR kick: limit must be >= 1') end

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

local ids
if ARGV[2] ~= '' then
  ids = {}
  if redis.call('ZSCORE', dead_key, ARGV[2]) then ids[1] = ARGV[2] end
else
  ids = redis.call('ZRANGE', dead_key, 0, limit - 1)
end
if #ids == 0 then return 0 end

local seq = redis.call('HINCRBY', meta_key, 'seq', #ids) - #ids
for _, id in ipairs(ids) do
  seq = seq + 1
  local job = decode(redis.call('HGET', jobs_key, id))
  job[STATE], job[ATTEMPTS], job[SEQ] = READY, 0, seq
  add_event(id, job, 'kicked')
  redis.call('ZREM', dead_key, id)
  redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', seq) .. id)
  redis.call('HSET', jobs_key, id, encode(job))
end
redis.call('PUBLISH', wake_channel, '0')
return #ids
