-- jobs: list a page of a topic's jobs in one state.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] state string
-- ARGV[3] offset int|empty
-- ARGV[4] limit int|empty
-- Returns: [next_offset, job...]: next_offset is 0 after the last page; each job is the array
--   of get.lua without its token. Order: scheduled by run_at; ready as reserve takes them, then
--   due jobs not yet promoted, by run_at; reserved by deadline; dead, most recent first.
-- Complexity: O(log M + offset + limit).
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local STATE_NAMES = {[SCHEDULED] = 'scheduled', [READY] = 'ready', [RESERVED] = 'reserved',
  [DEAD] = 'dead'}
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local DEFAULT_OFFSET, DEFAULT_LIMIT = 0, 100
local state_name = ARGV[2]
local offset = ARGV[3] == '' and DEFAULT_OFFSET or tonumber(ARGV[3])
local limit = ARGV[4] == '' and DEFAULT_LIMIT or tonumber(ARGV[4])
if not offset or offset < 0 or not limit or limit < 1 then
  return redis.error_reply('ERR jobs: offset must be >= 0 and limit >= 1')
end

local ids = {}
if state_name == 'scheduled' then
  ids = redis.call('ZRANGEBYSCORE', scheduled_key, '(' .. now, '+inf', 'LIMIT', offset, limit)
elseif state_name == 'ready' then
  local members = redis.call('ZRANGE', ready_key, offset, offset + limit - 1)
  for i, member in ipairs(members) do ids[i] = string.sub(member, 13) end
  if #ids < limit then
    local skip = math.max(0, offset - redis.call('ZCARD', ready_key))
    local due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now, 'LIMIT', skip,
      limit - #ids)
    for _, id in ipairs(due) do ids[#ids + 1] = id end
  end
elseif state_name == 'reserved' then
  ids = redis.call('ZRANGE', reserved_key, offset, offset + limit - 1)
elseif state_name == 'dead' then
  ids = redis.call('ZREVRANGE', dead_key, offset, offset + limit - 1)
else
  return redis.error_reply('ERR jobs: state must be scheduled, ready, reserved or dead')
end

local reply = {#ids == limit and offset + limit or 0}
for _, id in ipairs(ids) do
  local job = decode(redis.call('HGET', jobs_key, id))
  local state = job[STATE]
  if state == SCHEDULED and job[RUN_AT] <= now then state = READY end
  local reserved_until = false
  if state == RESERVED then reserved_until = tonumber(redis.call('ZSCORE', reserved_key, id)) end
  local pending_version = 0
  local pending = redis.call('HGET', pending_key, id)
  if pending then pending_version = decode(pending)[VERSION] end
  reply[#reply + 1] = {id, STATE_NAMES[state], job[VERSION], job[ATTEMPTS], job[PRIORITY],
    job[TTR], job[MAX_ATTEMPTS], job[RUN_AT], false, reserved_until,
    redis.call('HGET', errors_key, id), job[BODY], pending_version}
end
return reply
