-- kick: move dead jobs back to ready, with a fresh count of attempts; one by id, or the oldest.
-- KEYS[1] jobs hash
-- KEYS[2] ready zset
-- KEYS[3] dead zset
-- KEYS[4] meta hash
-- KEYS[5] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string|empty
-- ARGV[3] limit int
-- Returns: the number of jobs kicked (0 when the id is not dead). last_error is kept until the
--   job is acked or replaced. Empty id kicks up to limit jobs, those that died first first.
-- Complexity: O(N log M) for N kicked jobs.
local jobs_key, ready_key, dead_key, meta_key, wake_channel = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local function encode(job) return cmsgpack.pack(unpack(job, 1, BODY)) end
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local limit = tonumber(ARGV[3])
if not limit or limit < 1 then return redis.error_reply('ERR kick: limit must be >= 1') end

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
  redis.call('ZREM', dead_key, id)
  redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', seq) .. id)
  redis.call('HSET', jobs_key, id, encode(job))
end
redis.call('PUBLISH', wake_channel, '0')
return #ids
