-- stats: count a topic's jobs per state, with its totals and pause flag.
-- KEYS[1] scheduled zset
-- KEYS[2] ready zset
-- KEYS[3] reserved zset
-- KEYS[4] dead zset
-- KEYS[5] meta hash
-- ARGV[1] now_ms int|empty
-- Returns: [now_ms, scheduled, ready, reserved, dead, paused, next_due_ms, total_put,
--   total_reserved, total_acked, total_released, total_requeued, total_dead, total_pulled,
--   finished_done, finished_cancelled, finished_dead, finished_pulled, finished_aborted,
--   partitions]. The finished_* totals count the jobs that ended with each outcome (a dead job
--   ends when deleted or trimmed). Scheduled jobs whose run_at has passed count as ready;
--   paused is 0 or 1; next_due_ms is the earliest future run_at (-1 when none); totals count
--   since the topic was created. partitions is 0, or the partition count when the topic is
--   spread over partitions (meta field partitions): its jobs then live in their ids'
--   partitions, and these counts are only those of the topic's own name.
-- Complexity: O(log M).
local scheduled_key, ready_key, reserved_key, dead_key, meta_key = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5]
if #KEYS ~= 5 then return redis.error_reply('ERR stats: expected 5 keys') end
local now = tonumber(ARGV[1])
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR stats: now_ms must be an integer >= 0') end
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR stats: now_ms must be an integer >= 0')
end
local due = redis.call('ZCOUNT', scheduled_key, '-inf', now)
local future = redis.call('ZCARD', scheduled_key) - due
local next_due = redis.call('ZRANGEBYSCORE', scheduled_key, '(' .. now, '+inf', 'WITHSCORES',
  'LIMIT', 0, 1)
local meta = redis.call('HMGET', meta_key, 'paused', 'total_put', 'total_reserved',
  'total_acked', 'total_released', 'total_requeued', 'total_dead', 'total_pulled',
  'finished_done', 'finished_cancelled', 'finished_dead', 'finished_pulled', 'finished_aborted',
  'partitions')
local reply = {now, future, redis.call('ZCARD', ready_key) + due, redis.call('ZCARD', reserved_key),
  redis.call('ZCARD', dead_key), meta[1] == '1' and 1 or 0, tonumber(next_due[2]) or -1}
for i = 2, #meta do reply[#reply + 1] = tonumber(meta[i]) or 0 end
return reply
