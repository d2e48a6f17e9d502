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
-- ARGV[3] after_part int|empty
-- ARGV[4] after_score string|empty
-- ARGV[5] after_member string|empty
-- ARGV[6] limit int|empty
-- ARGV[7] prefix string|empty
-- ARGV[8] scan int|empty
-- Returns: [after, job...]: after is nil after the last page, else [part, score, member] of
--   the last job the call examined: pass them back as after_part, after_score, after_member
--   (all empty: from the start). Each job is the array of get.lua without its token. A
--   state's order is one or two parts (sorted sets): scheduled by run_at (part 1); ready as
--   reserve takes them (part 1, the ready zset, members `%012x` seq + id), then due jobs not
--   yet promoted, by run_at (part 2); reserved by deadline (1); dead, most recent first (1).
--   A page goes on right after the last job examined, in (score, member) order, whether that
--   job is still there or not: jobs removed before it or added before it shift nothing. With
--   a prefix, a call examines at most scan jobs (scan >= limit), so a page may hold fewer
--   than limit jobs, or none, and still have an after. Empty limit and scan: 100 and 2000 (or
--   limit if larger).
-- Complexity: O(log M + scan) with a prefix, O(log M + limit) without; O(log^2 M) more when
--   the after job has left its place (a binary search among the jobs of its score).
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key = KEYS[5], KEYS[6], KEYS[7]
if #KEYS ~= 7 then return redis.error_reply('ERR jobs: expected 7 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
-- True when member a comes before b at equal scores: Redis orders them bytewise (memcmp, then
-- the shorter first), while Lua's < on strings follows the server's locale.
local function member_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- The rank (ZREVRANGE's when reverse) of the first member after (score, member) in key's order,
-- whether that member is still there or not: ZRANK when it still holds that score, else a
-- binary search among the members of that score. O(log N), O(log^2 N) for a member gone.
local function resume_rank(key, score, member, reverse)
  local before, here = nil, 0
  if tonumber(redis.call('ZSCORE', key, member)) == tonumber(score) then
    before, here = redis.call('ZRANK', key, member), 1
  else
    local low = redis.call('ZCOUNT', key, '-inf', '(' .. score)
    local high = redis.call('ZCOUNT', key, '-inf', score)
    while low < high do
      local middle = math.floor((low + high) / 2)
      if member_before(redis.call('ZRANGE', key, middle, middle)[1], member) then
        low = middle + 1
      else
        high = middle
      end
    end
    before = low
  end
  if reverse then return redis.call('ZCARD', key) - before end
  return before + here
end
local STATE_NAMES = {[SCHEDULED] = 'scheduled', [READY] = 'ready', [RESERVED] = 'reserved',
  [DEAD] = 'dead'}
local READY_MEMBER_PREFIX = 12 -- a ready member is a %012x sequence number, then the id
local now = tonumber(ARGV[1])
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR jobs: now_ms must be an integer >= 0') end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR jobs: now_ms must be an integer >= 0')
end
local DEFAULT_LIMIT, DEFAULT_SCAN = 100, 2000
local state_name, prefix = ARGV[2], ARGV[7]
local after_part, after_score, after_member = tonumber(ARGV[3]), ARGV[4], ARGV[5]
local limit = ARGV[6] == '' and DEFAULT_LIMIT or tonumber(ARGV[6])
local scan = tonumber(ARGV[8])
if ARGV[8] == '' and limit then scan = math.max(DEFAULT_SCAN, limit) end
if not limit or limit < 1 or not scan or scan < limit then
  return redis.error_reply('ERR jobs: limit must be >= 1 and scan >= limit')
end
-- NaN, +-inf and fractions fail n % 1 == 0; the loops run up to limit and scan times
if limit % 1 ~= 0 or limit > 10000 or scan % 1 ~= 0 or scan > 100000 then
  return redis.error_reply('ERR jobs: limit must be an integer from 1 to 10000, scan an integer '
    .. 'up to 100000')
end
if ARGV[3] ~= '' and not (after_part and after_part % 1 == 0) then
  return redis.error_reply('ERR jobs: after_part must be an integer or empty')
end

-- A state's order is a run of parts: rank ranges [first, stop) of sorted sets, in the
-- direction the part is read (reverse: ZREVRANGE ranks).
local due = redis.call('ZCOUNT', scheduled_key, '-inf', now)
local parts
if state_name == 'scheduled' then
  parts = {{key = scheduled_key, first = due, stop = redis.call('ZCARD', scheduled_key)}}
elseif state_name == 'ready' then
  parts = {{key = ready_key, first = 0, stop = redis.call('ZCARD', ready_key),
    strip = READY_MEMBER_PREFIX}, {key = scheduled_key, first = 0, stop = due}}
elseif state_name == 'reserved' then
  parts = {{key = reserved_key, first = 0, stop = redis.call('ZCARD', reserved_key)}}
elseif state_name == 'dead' then
  parts = {{key = dead_key, first = 0, stop = redis.call('ZCARD', dead_key), reverse = true}}
else
  return redis.error_reply('ERR jobs: state must be scheduled, ready, reserved or dead')
end
local from_part, from_rank = 1, parts[1].first
if ARGV[3] ~= '' or after_score ~= '' or after_member ~= '' then
  local part = after_part and parts[after_part]
  local score = tonumber(after_score)
  if not part or not score or score ~= score or after_member == '' then -- NaN ~= NaN
    return redis.error_reply('ERR jobs: after_part must be a part of the state, after_score a ' ..
      'number and after_member not empty')
  end
  from_part, from_rank = after_part, resume_rank(part.key, after_score, after_member, part.reverse)
end

-- Up to n members from the resume point on; part i's end among them (ends[i]).
local function members_from(n)
  local found, ends, rank = {}, {}, from_rank
  for index = from_part, #parts do
    local part = parts[index]
    local start = math.max(rank, part.first)
    local take = math.min(n - #found, part.stop - start)
    if take > 0 then
      local members = redis.call(part.reverse and 'ZREVRANGE' or 'ZRANGE', part.key, start,
        start + take - 1)
      for _, member in ipairs(members) do found[#found + 1] = member end
    end
    ends[index], rank = #found, 0
  end
  return found, ends
end

local examined = prefix == '' and limit or scan
local candidates, ends = members_from(examined + 1) -- one more: is there a next page?
local stripped = parts[from_part].strip and ends[from_part] or 0 -- the ready zset's members
local ids, seen = {}, math.min(examined, #candidates)
for i = 1, seen do
  local id = candidates[i]
  if i <= stripped then id = string.sub(id, READY_MEMBER_PREFIX + 1) end
  if prefix == '' or string.sub(id, 1, #prefix) == prefix then
    ids[#ids + 1] = id
    if #ids == limit then
      seen = i
      break
    end
  end
end
local after = false
if #candidates > seen then
  local index, member = from_part, candidates[seen]
  while ends[index] < seen do index = index + 1 end
  after = {index, redis.call('ZSCORE', parts[index].key, member), member}
end

local reply = {after}
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
