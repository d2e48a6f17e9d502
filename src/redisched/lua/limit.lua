-- limit: return finished delivery slots, then grant new ones under the topic's limits.
-- KEYS[1] slots zset
-- KEYS[2] bucket hash
-- KEYS[3] meta hash
-- KEYS[4] scheduled zset
-- KEYS[5] ready zset
-- KEYS[6] reserved zset
-- KEYS[7] wake channel
-- ARGV[1] now_ms int|empty
-- ARGV[2] want int
-- ARGV[3] hold_ms int
-- ARGV[4] slot string...
-- Returns: [now_ms, granted, retry_ms, next_due_ms, next_timeout_ms, slot...]. The slots of
--   ARGV[4..] (from earlier grants) are freed first; then up to want deliveries are granted,
--   no more than the due jobs (ready, or scheduled with run_at <= now), and within the meta
--   hash's concurrency and rate. Concurrency counts the topic's reserved jobs (whoever
--   leased them: a job's place is free as soon as it leaves the reserved set by any path,
--   ack, release, bury, delete or timeout) plus the granted slots not yet leased; a slot is
--   named and held until freed (its lease done) or for hold_ms, so a holder that crashed
--   between grant and lease gives it back. Rate is deliveries per second: a token bucket
--   holding at most max(1, rate / 10) tokens. A paused topic grants nothing. When a limit
--   holds deliveries back, the meta hash's limit_waiting field is set; whoever frees room
--   next (this script, ack, bury, delete, delete_many, purge, a release or requeue that ends
--   a reservation) clears it and publishes 0 on the wake channel.
--   retry_ms: when granted < want because of a limit, the ms after which asking again may
--   succeed (rate: the next token; concurrency: the earliest slot expiry, -1 when only
--   reservations hold the room: their end publishes); else -1. next_due_ms is the earliest
--   scheduled run_at and next_timeout_ms the earliest reservation deadline, -1 when none.
--   Slot names are returned only when a concurrency limit is set.
-- Complexity: O((F + G) log S + log M) for F freed and G granted slots out of S held.
local slots_key, bucket_key, meta_key = KEYS[1], KEYS[2], KEYS[3]
local scheduled_key, ready_key, reserved_key, wake_channel = KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if #KEYS ~= 7 then return redis.error_reply('ERR limit: expected 7 keys') end
local now = tonumber(ARGV[1])
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR limit: now_ms must be an integer >= 0') end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR limit: now_ms must be an integer >= 0')
end
local want, hold = tonumber(ARGV[2]), tonumber(ARGV[3])
if not want or want < 0 or not hold or hold < 1 then
  return redis.error_reply('ERR limit: want must be >= 0 and hold_ms >= 1')
end
if want % 1 ~= 0 or want > 1000 or hold % 1 ~= 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR limit: want must be an integer from 0 to 1000, hold_ms an integer')
end

-- the indexes as text: Redis formats a number argument (~2,200 instructions each)
local function earliest(key)
  local head = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
  return tonumber(head[2]) or -1
end

local WAITING = 'limit_waiting'  -- meta field: a consumer waits for room
local freed = {}
for i = 4, #ARGV, 1 do freed[#freed + 1] = ARGV[i] end
local removed = 0
if #freed > 0 then removed = redis.call('ZREM', slots_key, unpack(freed)) end
redis.call('ZREMRANGEBYSCORE', slots_key, '-inf', now)

local config = redis.call('HMGET', meta_key, 'concurrency', 'rate', 'paused')
local concurrency, rate = tonumber(config[1]), tonumber(config[2])
local held = 0
if concurrency then held = redis.call('ZCARD', slots_key) + redis.call('ZCARD', reserved_key) end
-- Slots freed after their lease are no new room (the job is reserved now): wake nobody then.
if removed > 0 and (not concurrency or held < concurrency)
    and redis.call('HDEL', meta_key, WAITING) == 1 then
  redis.call('PUBLISH', wake_channel, '0')
end
local granted, retry, crowded = want, -1, false
if config[3] == '1' then granted = 0 end
if granted > 0 then
  local due = redis.call('ZCARD', ready_key) + redis.call('ZCOUNT', scheduled_key, '-inf', now)
  granted = math.min(granted, due)
end
if concurrency and granted > 0 then
  local free = math.max(0, concurrency - held)
  if free < granted then
    granted, crowded = free, true
    redis.call('HSET', meta_key, WAITING, '1')
  end
end
if rate and granted > 0 then
  local burst = math.max(1, rate / 10)
  local state = redis.call('HMGET', bucket_key, 'tokens', 'at')
  local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
  if tokens < granted then
    granted = math.floor(tokens)
    local wait = math.max(1, math.ceil((granted + 1 - tokens) * 1000 / rate))
    if retry < 0 or wait < retry then retry = wait end
  end
  redis.call('HSET', bucket_key, 'tokens', tostring(tokens - granted), 'at', now)
end

local names = {}
if concurrency and granted > 0 then
  local seq = redis.call('HINCRBY', bucket_key, 'seq', granted) - granted
  for i = 1, granted do
    names[i] = tostring(seq + i)
    redis.call('ZADD', slots_key, now + hold, names[i])
  end
end
local first_expiry = earliest(slots_key)
if crowded and first_expiry >= 0 then
  local expiry = math.max(1, first_expiry - now)
  if retry < 0 or expiry < retry then retry = expiry end
end
local reply = {now, granted, retry, earliest(scheduled_key), earliest(reserved_key)}
for i = 1, #names do reply[#reply + 1] = names[i] end
return reply
