-- timeline: count the scheduled jobs falling due in each step ahead, and the oldest due time.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] width_ms int|empty
-- ARGV[3] limit int|empty
-- Returns: [now_ms, oldest_ready_ms, count...]: limit counts, the i-th (from 1) of the jobs
--   whose run_at is in (now + (i - 1) * width_ms, now + i * width_ms]; jobs already due are
--   not counted (they are ready). oldest_ready_ms is the earliest run_at of the job reserve
--   takes next and of the scheduled jobs already due, -1 when no job is ready: how long the
--   head of the queue has waited (with priorities, a job further back may have waited longer).
-- Complexity: O(limit log M).
local jobs_key, scheduled_key, ready_key = KEYS[1], KEYS[2], KEYS[3]
if #KEYS ~= 3 then return redis.error_reply('ERR timeline: expected 3 keys') end
-- The record's field that this script reads (see put.lua for the whole record).
local RUN_AT = 7
local now = tonumber(ARGV[1])
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR timeline: now_ms must be an integer >= 0') end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR timeline: now_ms must be an integer >= 0')
end
local DEFAULT_WIDTH, DEFAULT_LIMIT, MAX_LIMIT = 60000, 60, 1440
local width = ARGV[2] == '' and DEFAULT_WIDTH or tonumber(ARGV[2])
local limit = ARGV[3] == '' and DEFAULT_LIMIT or tonumber(ARGV[3])
if not width or width < 1 or not limit or limit < 1 then
  return redis.error_reply('ERR timeline: width_ms and limit must be >= 1')
end
-- NaN, +-inf and fractions fail n % 1 == 0; the loop below runs limit times
if width % 1 ~= 0 or limit % 1 ~= 0 or limit > MAX_LIMIT then
  return redis.error_reply('ERR timeline: width_ms must be an integer, limit an integer from 1 '
    .. 'to 1440')
end

local oldest = -1
local due = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')
if due[2] and tonumber(due[2]) <= now then oldest = tonumber(due[2]) end
local head = redis.call('ZRANGE', ready_key, 0, 0)
if head[1] then
  local raw = redis.call('HGET', jobs_key, string.sub(head[1], 13))
  if raw then
    local run_at = select(RUN_AT, cmsgpack.unpack(raw))
    if oldest < 0 or run_at < oldest then oldest = run_at end
  end
end

local reply = {now, oldest}
for i = 1, limit do
  reply[i + 2] = redis.call('ZCOUNT', scheduled_key, '(' .. (now + (i - 1) * width),
    now + i * width)
end
return reply
