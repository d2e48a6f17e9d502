-- get_schedule: read schedules by id.
-- KEYS[1] schedules hash
-- KEYS[2] meta hash
-- ARGV[1] id string...
-- Returns: one entry per id, in order: nil when there is no such schedule, else the array
--   [id, version, cron, tz, every_ms, start_ms, end_ms, next_ms, last_ms, priority, ttr_ms,
--   max_attempts, body, times_left, last_time_ms]. cron is "" for an interval schedule;
--   start_ms / end_ms 0 mean none; next_ms is the pending occurrence (0: none); last_ms the
--   latest occurrence reserved or skipped (a skipped one moved past now: its run_at, to the
--   second; 0: none); times_left counts the cron times held after next_ms
--   and last_time_ms is the latest of them (0: none). When an id has no schedule and the topic
--   is spread over partitions (meta field partitions: a schedule made over HTTP or the CLI lives
--   in its id's partition), its entry is the partition count, an integer, instead of nil (meta
--   is read only then, once a call).
-- Complexity: O(N) for N ids.
local schedules_key, meta_key = KEYS[1], KEYS[2]
if #KEYS ~= 2 then return redis.error_reply('ERR get_schedule: expected 2 keys') end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
if #ARGV < 1 then return redis.error_reply('ERR get_schedule: expected ids') end

local reply = {}
local partitions -- meta partitions, read at the first miss (false: not partitioned)
for i = 1, #ARGV, 1 do
  local raw = redis.call('HGET', schedules_key, ARGV[i])
  if raw then
    local s = {cmsgpack.unpack(raw)}
    local times = s[S_TIMES]
    reply[i] = {ARGV[i], s[S_VERSION], s[S_CRON], s[S_TZ], s[S_EVERY], s[S_START_AT],
      s[S_END_AT], s[S_NEXT], s[S_LAST], s[S_PRIORITY], s[S_TTR], s[S_MAX_ATTEMPTS], s[S_BODY],
      #times, times[#times] or 0}
  else
    if partitions == nil then partitions = redis.call('HGET', meta_key, 'partitions') end
    reply[i] = partitions and partitions + 0 or false
  end
end
return reply
