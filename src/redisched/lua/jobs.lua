-- jobs: list a page of a topic's jobs in one state, optionally only ids starting with a prefix.
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
-- ARGV[5] prefix string|empty
-- ARGV[6] scan int|empty
-- Returns: [next_offset, job...]: next_offset is 0 after the last page; each job is the array
--   of get.lua without its token. offset counts positions in the state's order: scheduled by
--   run_at; ready as reserve takes them, then due jobs not yet promoted, by run_at; reserved
--   by deadline; dead, most recent first. With a prefix, a call examines at most scan
--   positions (scan >= limit), so a page may hold fewer than limit jobs, or none, and still
--   have a next_offset. Empty offset, limit and scan: 0, 100 and 2000 (or limit if larger).
-- Complexity: O(log M + scan + limit) with a prefix, O(log M + limit) without.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local STATE_NAMES = {[SCHEDULED] = 'scheduled', [READY] = 'ready', [RESERVED] = 'reserved',
  [DEAD] = 'dead'}
local READY_MEMBER_PREFIX = 12 -- a ready member is a %012x sequence number, then the id
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local DEFAULT_OFFSET, DEFAULT_LIMIT, DEFAULT_SCAN = 0, 100, 2000
local state_name, prefix = ARGV[2], ARGV[5]
local offset = ARGV[3] == '' and DEFAULT_OFFSET or tonumber(ARGV[3])
local limit = ARGV[4] == '' and DEFAULT_LIMIT or tonumber(ARGV[4])
local scan = tonumber(ARGV[6])
if ARGV[6] == '' and limit then scan = math.max(DEFAULT_SCAN, limit) end
if not offset or offset < 0 or not limit or limit < 1 or not scan or scan < limit then
  return redis.error_reply('ERR jobs: offset must be >= 0, limit >= 1 and scan >= limit')
end

-- A state's order is a run of rank ranges ("segments") of the state's sorted sets.
local due = redis.call('ZCOUNT', scheduled_key, '-inf', now)
local segments
if state_name == 'scheduled' then
  segments = {{key = scheduled_key, first = due, count = redis.call('ZCARD', scheduled_key) - due}}
elseif state_name == 'ready' then
  segments = {{key = ready_key, first = 0, count = redis.call('ZCARD', ready_key), strip = READY_MEMBER_PREFIX},
    {key = scheduled_key, first = 0, count = due}}
elseif state_name == 'reserved' then
  segments = {{key = reserved_key, first = 0, count = redis.call('ZCARD', reserved_key)}}
elseif state_name == 'dead' then
  segments = {{key = dead_key, first = 0, count = redis.call('ZCARD', dead_key), reverse = true}}
else
  return redis.error_reply('ERR jobs: state must be scheduled, ready, reserved or dead')
end

-- The ids at positions offset .. offset + n - 1 of the state's order.
local total = 0
for _, segment in ipairs(segments) do total = total + segment.count end
local function ids_at(n)
  local ids, position, base = {}, offset, 0
  for _, segment in ipairs(segments) do
    local from = position - base
    if #ids < n and from < segment.count then
      local take = math.min(n - #ids, segment.count - from)
      local start = segment.first + from
      local members = redis.call(segment.reverse and 'ZREVRANGE' or 'ZRANGE', segment.key, start,
        start + take - 1)
      for _, member in ipairs(members) do
        ids[#ids + 1] = segment.strip and string.sub(member, segment.strip + 1) or member
      end
      position = position + #members
    end
    base = base + segment.count
  end
  return ids
end

local examined = prefix == '' and limit or scan
local candidates = ids_at(examined)
local ids, seen = {}, #candidates
for i, id in ipairs(candidates) do
  if prefix == '' or string.sub(id, 1, #prefix) == prefix then
    ids[#ids + 1] = id
    if #ids == limit then
      seen = i
      break
    end
  end
end
local next_offset = offset + seen
if next_offset >= total then next_offset = 0 end

local reply = {next_offset}
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
