-- schedule: create or replace a recurring schedule by id, and put its next occurrence.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] errors hash
-- KEYS[5] schedules hash
-- KEYS[6] refill zset
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- KEYS[9] feed stream
-- KEYS[10] history hash
-- KEYS[11] finished zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] if_version int|empty
-- ARGV[4] every_ms int
-- ARGV[5] anchor_ms int|empty
-- ARGV[6] start_ms int
-- ARGV[7] end_ms int
-- ARGV[8] ttr_ms int|empty
-- ARGV[9] priority int
-- ARGV[10] max_attempts int|empty
-- ARGV[11] cron string
-- ARGV[12] tz string
-- ARGV[13] body bytes
-- ARGV[14] time int...
-- Returns: [status, version, next_ms]. status: 1 created, 2 replaced, 5 version conflict
--   (if_version did not match; version is the current one, 0 when there is no schedule, so an
--   if_version of 0 creates only;
--   nothing changed), 6 ended (the schedule would never run: end_ms is not after now, the
--   server's time unless now_ms is given, or its first occurrence would come after end_ms;
--   nothing changed; version as for 5), 7 times too early (no cron time sent can be the
--   first occurrence: all come before the earliest it may have, as the last run is further
--   ahead than they reach, or their ids are live jobs'; nothing changed; version as for 5, and
--   next_ms is the time the times must come after: the glue computes them from there and
--   calls again), 8 partitioned (the topic is spread over partitions, meta field partitions,
--   and holds no schedule of this id: a new schedule goes into its id's partition; version
--   is the partition count; nothing changed). next_ms
--   is the time of the occurrence now pending (0: none, the schedule has ended: its next time
--   would be past 9999-12-31T23:59:59Z, the last time a job can have, or a cron schedule's
--   times are all past). every_ms > 0 makes an interval schedule: occurrences at anchor_ms + k * every_ms
--   (an empty anchor_ms keeps the replaced schedule's anchor, else takes now rounded up to a
--   second). every_ms 0 makes a cron schedule whose upcoming UTC times are ARGV[14...]
--   (ascending whole seconds, computed by the glue; cron and tz are kept for it). An occurrence
--   is the job <id>@<YYYY-MM-DDTHH:MM:SSZ>. The first one is at or after now and start_ms and
--   after the latest occurrence reserved or skipped (deleted), and its id is not a live job's
--   (a time whose id is taken is passed over); the pending occurrence of a replaced schedule is
--   replaced unless it is running. A replaced schedule's waiting occurrence that is already due
--   (its time and run_at before now, not yet run) stays the first one when its time is one of the new
--   schedule's (an interval's on the same grid, not before start_ms; a cron schedule's with
--   the same cron and tz), so declaring a schedule again never skips a due run.
--   start_ms / end_ms 0 mean none; empty ttr_ms / max_attempts
--   take the topic's defaults (meta fields ttr, max_attempts) at this call, else 60000 ms / 25
--   attempts (as put.lua). A new occurrence gets a put event, like any put (its version goes on
--   from a finished record of the same id). A replaced schedule's waiting occurrence (scheduled
--   or ready) that is also the new schedule's next one is replaced in place: version + 1, its
--   events kept, one replaced event (detail 'schedule replaced'), attempts and last_error
--   reset; one that is not ends as delete.lua ends a job: a deleted event (detail 'schedule
--   replaced') and a finished record with outcome cancelled.
-- Complexity: O(T + log M) for T times.
local jobs_key, scheduled_key, ready_key, errors_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local schedules_key, refill_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local feed_key, history_key, finished_key = KEYS[9], KEYS[10], KEYS[11]
if #KEYS ~= 11 then return redis.error_reply('ERR schedule: expected 11 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local CREATED, REPLACED, VERSION_CONFLICT, ENDED, TIMES_TOO_EARLY, PARTITIONED = 1, 2, 5, 6, 7, 8
local DEFAULT_TTR_MS, DEFAULT_MAX_ATTEMPTS = 60000, 25 -- as put.lua
local LAST_RUN_AT = 253402300799000 -- 9999-12-31T23:59:59Z: no job runs later (validate.py)
local SCHEDULE_REPLACED = 'schedule replaced' -- the detail of its occurrence's event
local now = tonumber(ARGV[1])
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR schedule: now_ms must be an integer >= 0') end
  clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR schedule: now_ms must be an integer >= 0')
end
local id, if_version = ARGV[2], tonumber(ARGV[3])
local every, anchor = tonumber(ARGV[4]), tonumber(ARGV[5])
local start_at, end_at = tonumber(ARGV[6]), tonumber(ARGV[7])
local priority = tonumber(ARGV[9])
if not every or every < 0 or every % 1000 ~= 0 or not start_at or not end_at or not priority
    or #ARGV < 13 then
  return redis.error_reply('ERR schedule: bad arguments (every_ms, start_ms, end_ms, priority)')
end
-- NaN, +-inf and fractions fail n % 1 == 0 (Lua 5.1: n - floor(n) * 1)
if start_at % 1 ~= 0 or start_at < 0 or end_at % 1 ~= 0 or end_at < 0 then
  return redis.error_reply('ERR schedule: start_ms and end_ms must be integers >= 0')
end
if priority % 1 ~= 0 or priority < -2147483648 or priority > 2147483647 then
  return redis.error_reply('ERR schedule: priority must be an integer from -2^31 to 2^31 - 1')
end
if ARGV[3] ~= '' and not (if_version and if_version % 1 == 0 and if_version >= 0) then
  return redis.error_reply('ERR schedule: if_version must be an integer >= 0 or empty')
end
if ARGV[5] ~= '' and not (anchor and anchor % 1 == 0) then
  return redis.error_reply('ERR schedule: anchor_ms must be an integer or empty')
end
local ttr_arg, attempts_arg = tonumber(ARGV[8]), tonumber(ARGV[10])
if ARGV[8] ~= '' and not (ttr_arg and ttr_arg % 1 == 0 and ttr_arg >= 1) then
  return redis.error_reply('ERR schedule: ttr_ms must be an integer >= 1 or empty')
end
if ARGV[10] ~= '' and not (attempts_arg and attempts_arg % 1 == 0 and attempts_arg >= 0) then
  return redis.error_reply('ERR schedule: max_attempts must be an integer >= 0 or empty')
end
local times = {}
for i = 14, #ARGV, 1 do
  local time = tonumber(ARGV[i])
  if not time or time % 1000 ~= 0 or (i > 14 and time <= times[#times]) then
    return redis.error_reply('ERR schedule: times must be ascending whole seconds')
  end
  times[#times + 1] = time
end


-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local LOG = 10
local EVENT = {put = 1, replaced = 2, reserved = 3, released = 4, requeued = 5, retried = 6,
  touched = 7, buried = 8, dead = 9, kicked = 10, acked = 11, deleted = 12, pulled = 13,
  expired = 14}
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'keep_finished',
  'keep_finished_for_ms', 'keep_dead', 'keep_dead_for_ms', 'feed_epoch', 'partitions')
local history_on = settings[1] ~= '0'
local keep_events = tonumber(settings[2]) or 10000
local feed_epoch = settings[7] -- false until the feed's first entry (flush_feed)
local feed = {}
local function encode(job)
  local BODY, LOG = 9, 10 -- the record's last fields, as locals (flush_feed says why)
  return cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY))
end

-- A scheduled job unchanged since its put keeps no log: its SEQ holds run_at - the put's time
-- (ms), which keeps a fresh job's record in a smaller allocation. decode() turns that back
-- into a log with the put event, so the rest of a script never sees the difference.
local function materialize(job)
  -- the record's fields, the state and the format as locals, not upvalues (flush_feed says why)
  local STATE, VERSION, RUN_AT, SEQ, LOG, SCHEDULED, EVENT_FORMAT = 1, 2, 7, 8, 10, 1, '>BdIIH'
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

-- Records that `kind` happened to job (a decoded record) now; detail is nil or text.
local function add_event(id, job, kind, detail)
  -- the record's fields and the constants as locals, not upvalues (flush_feed says why);
  -- EVENT_HEADER + the detail length (the '>H' that ends the header) is the length of an event
  local VERSION, ATTEMPTS, LOG = 2, 3, 10
  local EVENT_FORMAT, EVENT_HEADER, MAX_EVENTS, MAX_DETAIL = '>BdIIH', 19, 16, 200
  if not history_on then
    job[LOG] = nil
    return
  end
  detail = detail or ''
  if #detail > MAX_DETAIL then -- cut between UTF-8 characters (a cut one reads back as U+FFFD)
    local cut, byte = MAX_DETAIL, string.byte(detail, MAX_DETAIL + 1)
    while cut > 0 and byte >= 0x80 and byte < 0xC0 do -- 0x80-0xBF: a character goes on
      byte, cut = string.byte(detail, cut), cut - 1
    end
    detail = string.sub(detail, 1, cut)
  end
  local log = job[LOG] or '\0'
  local count = string.byte(log)
  if count >= MAX_EVENTS then -- the first event (put) stays, the second goes
    local second = 2 + EVENT_HEADER + struct.unpack('>H', log, 2 + EVENT_HEADER - 2)
    log = string.sub(log, 1, second - 1) .. string.sub(log,
      second + EVENT_HEADER + struct.unpack('>H', log, second + EVENT_HEADER - 2))
    count = count - 1
  end
  local event = struct.pack(EVENT_FORMAT, EVENT[kind], now, job[VERSION], job[ATTEMPTS], #detail)
    .. detail
  job[LOG] = string.char(count + 1) .. string.sub(log, 2) .. event
  if keep_events > 0 then -- the same bytes, then the job's id (feed.lua)
    local n = #feed
    if n == 0 then
      feed = {event, id} -- sized at once: two inserts into an empty table resize it twice
    else
      feed[n + 1], feed[n + 2] = event, id
    end
  end
end

-- Adds this call's events to the topic's feed, FEED_ENTRY_EVENTS to an entry (Lua's unpack
-- takes at most 8000 values, and a call may ack and lease 1000 jobs each). meta feed_total
-- counts the events ever added: an entry's id is <feed_epoch>-<feed_total at its last event>,
-- so ids are fixed under a fixed clock, and MINID ~ drops whole stream nodes of entries that
-- hold none of the newest keep_events events (no read, no XDEL). A node holds at most 100
-- entries, so only the XADD that passes a multiple of FEED_TRIM_EVENTS trims (the others
-- skip its cost), and the feed holds at most FEED_TRIM_EVENTS more events for it. A trim
-- evicts up to FEED_TRIM_LIMIT entries (~0.7 ms): a feed left long when keep_events is
-- lowered shrinks by ~1000 entries a call (Redis's default limit would give 100).
-- feed_epoch (meta) sorts after every id a follower can hold. A new feed (no stream: a new
-- topic, or one deleted and used again, whose followers may hold ids of its old feed) takes
-- the clock in µs: the server's TIME (clock), or now_ms * 1000 under a caller's clock, so ids
-- are fixed under a fixed clock. A feed that holds ids (time-based ones of an older version,
-- a meta reset while the feed stayed) takes its last id's first part + 1, and so does an XADD
-- refused because the stream is ahead of meta. An epoch stays text and is computed as text
-- (now's digits and '000', a carry through the digits): Lua's numbers hold every integer only
-- up to 2^53 (a caller's clock past the year 2255 in µs), and write 15 digits as '%.14g'.
local function flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
  if #feed == 0 then return feed_epoch end
  -- the call's state as arguments and the constants as locals, not upvalues: the closure is
  -- made on every call, and each value it captures costs Redis ~600-1,100 instructions there
  -- (a local ~10, when it runs). It empties feed in place and returns feed_epoch (a new
  -- feed's, else the one given).
  local FEED_FIELDS, FEED_ENTRY_EVENTS, FEED_TRIM_EVENTS, FEED_TRIM_LIMIT = 2, 500, 100, 100000
  local per_entry, events = FEED_ENTRY_EVENTS * FEED_FIELDS, #feed / FEED_FIELDS
  local index = redis.call('HINCRBY', meta_key, 'feed_total', events == 1 and '1' or events)
    - events
  for first = 1, #feed, per_entry do
    local last = math.min(first + per_entry - 1, #feed)
    local before = index
    index = index + (last - first + 1) / FEED_FIELDS
    local oldest = index > keep_events and math.floor(index / FEED_TRIM_EVENTS)
      > math.floor(before / FEED_TRIM_EVENTS) and index - keep_events + 1
    -- numbers as '%d': Lua's own text of a number is '%.14g' (1e+14 from 10^14 on, and slower)
    local id = feed_epoch and feed_epoch .. '-' .. string.format('%d', index)
    local added = id and (oldest and redis.pcall('XADD', feed_key, 'MINID', '~',
      feed_epoch .. '-' .. string.format('%d', oldest), 'LIMIT', FEED_TRIM_LIMIT, id,
      unpack(feed, first, last)) or redis.pcall('XADD', feed_key, id, unpack(feed, first, last)))
    if not id or type(added) == 'table' then
      local info = redis.call('EXISTS', feed_key) == 1 and redis.call('XINFO', 'STREAM', feed_key)
      feed_epoch = clock and clock[1] .. string.sub('00000' .. clock[2], -6)
        or string.format('%d000', now)
      for i = 1, info and #info or 0, 2 do
        if info[i] == 'last-generated-id' then -- its first part + 1, in decimal text
          local head, nines = string.match(info[i + 1], '^(%d-)(9*)%-')
          feed_epoch = (head == '' and '1' or string.sub(head, 1, -2)
            .. string.byte(head, -1) - 47) .. string.rep('0', #nines)
        end
      end
      -- the value of `encoding`, longer than hash-max-listpack-value (64), makes Redis keep meta
      -- as a hash table: the fields every call reads are found by hash, not by a scan
      redis.call('HSET', meta_key, 'feed_epoch', feed_epoch, 'encoding',
        'meta is a hash table: this value, over 64 bytes (hash-max-listpack-value), keeps it one')
      redis.call('HDEL', meta_key, 'feed_events') -- the count kept by older versions
      id = feed_epoch .. '-' .. string.format('%d', index)
      if oldest then
        redis.call('XADD', feed_key, 'MINID', '~',
          feed_epoch .. '-' .. string.format('%d', oldest), 'LIMIT', FEED_TRIM_LIMIT, id,
          unpack(feed, first, last))
      else
        redis.call('XADD', feed_key, id, unpack(feed, first, last))
      end
    end
  end
  for i = #feed, 1, -1 do feed[i] = nil end
  return feed_epoch
end

-- The finished record (history hash): these fields, packed in this order (EVENTS: a log).
local OUTCOME, FINISHED_AT, F_VERSION, F_ATTEMPTS, RESULT, LAST_ERROR, EVENTS =
  1, 2, 3, 4, 5, 6, 7
local OUTCOMES = {done = 1, cancelled = 2, dead = 3, pulled = 4}
local keep_finished = tonumber(settings[3]) or 10000
local keep_finished_for = tonumber(settings[4]) or 604800000
local ended = {done = 0, cancelled = 0, dead = 0, pulled = 0}

-- Removes the oldest members of a zset scored by time beyond `keep` or older than `keep_for`
-- ms, at most `most`, calling drop(id) for each; with `fresh` (ms), none scored within it
-- of now.
local function trim(key, keep, keep_for, most, drop, fresh)
  local n = math.max(redis.call('ZCARD', key) - keep,
    redis.call('ZCOUNT', key, '-inf', now - keep_for))
  n = math.min(n, most)
  if n > 0 and fresh then n = math.min(n, redis.call('ZCOUNT', key, '-inf', '(' .. now - fresh)) end
  if n <= 0 then return end
  local popped = redis.call('ZPOPMIN', key, n) -- member, score, ...
  for i = 1, #popped, 2 do drop(popped[i]) end
end

-- Writes the finished record of a job that ended now (outcome: done, cancelled, dead or
-- pulled); flush() then counts it and trims the topic's finished jobs.
local function finish(id, job, outcome, result, last_error)
  ended[outcome] = ended[outcome] + 1
  local VERSION, ATTEMPTS, LOG = 2, 3, 10 -- locals, not upvalues (flush_feed says why)
  if not history_on then -- no record keeps its version: version_floor does (flush)
    ended.top = math.max(ended.top or 0, job[VERSION])
    return
  end
  -- the finished record's fields, OUTCOME .. EVENTS in their order (no table to build)
  redis.call('HSET', history_key, id, cmsgpack.pack(OUTCOMES[outcome], now, job[VERSION],
    job[ATTEMPTS], result or false, last_error or false, job[LOG] or '\0'))
  redis.call('ZADD', finished_key, now, id)
end

-- Ends the call: the feed entry, the finished_* counters, and retention by keep_finished and
-- keep_finished_for but dedup_window (TRIM_PER_CALL more than this call finished, at most; the
-- finished records it drops are read for version_floor and deleted, SLICE to a command).
local function flush()
  feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
  local TRIM_PER_CALL, SLICE = 10, 1000 -- locals, not upvalues (flush_feed says why)
  -- history off: the highest version that ended (finish), not an outcome, raises version_floor,
  -- above which a new life of any id starts (put.lua): no finished record keeps it
  local count, ended_top = 0, ended.top
  ended.top = nil
  if ended_top then
    local floor = tonumber(redis.call('HGET', meta_key, 'version_floor')) or 0
    if ended_top > floor then
      redis.call('HSET', meta_key, 'version_floor', string.format('%d', ended_top))
    end
  end
  for outcome, n in pairs(ended) do
    if n > 0 then
      redis.call('HINCRBY', meta_key, 'finished_' .. outcome, n)
      count = count + n
    end
  end
  if count == 0 or not history_on then return end
  -- a record within the topic's dedup_window stays (put.lua); the versions of those dropped
  -- raise version_floor, above which a new life of any id starts (put.lua)
  local meta, dropped = redis.call('HMGET', meta_key, 'dedup_window_ms', 'version_floor'), {}
  trim(finished_key, keep_finished, keep_finished_for, count + TRIM_PER_CALL,
    function(id) dropped[#dropped + 1] = id end, tonumber(meta[1]))
  local F_VERSION, floor = 3, tonumber(meta[2]) or 0
  local top = floor
  for start = 1, #dropped, SLICE do
    local slice = {unpack(dropped, start, math.min(start + SLICE - 1, #dropped))}
    for _, raw in ipairs(redis.call('HMGET', history_key, unpack(slice))) do
      if raw then top = math.max(top, ({cmsgpack.unpack_limit(raw, F_VERSION)})[F_VERSION + 1]) end
    end
    redis.call('HDEL', history_key, unpack(slice))
  end
  if top > floor then redis.call('HSET', meta_key, 'version_floor', string.format('%d', top)) end
end

-- An occurrence's id names its UTC time: <schedule id>@YYYY-MM-DDTHH:MM:SSZ.
local function iso(ms)
  local s = math.floor(ms / 1000)
  local days, sod = math.floor(s / 86400), s % 86400
  local z = days + 719468  -- civil date from days (H. Hinnant's algorithm)
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local day = doy - math.floor((153 * mp + 2) / 5) + 1
  local month = mp < 10 and mp + 3 or mp - 9
  local year = yoe + era * 400 + (month <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', year, month, day,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60)
end

-- The larger of id's finished version and meta version_floor (the highest version trimmed
-- away or ended with history off, else 0), + 1: versions never repeat for an id, as put.lua.
local function next_version(id)
  local ended = redis.call('HGET', history_key, id) -- history off too: records kept from before
  local floor = tonumber(redis.call('HGET', meta_key, 'version_floor')) or 0
  if not ended then return floor + 1 end
  local before = {cmsgpack.unpack_limit(ended, F_VERSION)} -- the offset read, then the fields
  return math.max(before[F_VERSION + 1], floor) + 1
end

-- Puts the occurrence of schedule s at `at` (create-only: an existing id is left alone);
-- `replacing`: the decoded record of the waiting occurrence with that id, taken out of its
-- sorted set, which the new one replaces.
local function place_occurrence(id, at, s, replacing)
  if not replacing and redis.call('HEXISTS', jobs_key, id) == 1 then return false end
  local job = {}
  job[STATE], job[ATTEMPTS], job[PRIORITY] = SCHEDULED, 0, s[S_PRIORITY]
  job[TTR], job[MAX_ATTEMPTS], job[RUN_AT], job[SEQ] = s[S_TTR], s[S_MAX_ATTEMPTS], at, 0
  job[BODY] = s[S_BODY]
  if replacing then
    job[VERSION], job[LOG] = replacing[VERSION] + 1, replacing[LOG]
    redis.call('HDEL', errors_key, id)
    add_event(id, job, 'replaced', SCHEDULE_REPLACED)
  else
    job[VERSION] = next_version(id)
    add_event(id, job, 'put')
    if history_on and at > now then job[LOG], job[SEQ] = nil, at - now end -- implied (put.lua)
  end
  redis.call('HSET', jobs_key, id, encode(job))
  redis.call('ZADD', scheduled_key, at, id)
  redis.call('HINCRBY', meta_key, 'total_put', '1') -- an occurrence counts as a put
  return true
end

-- The waiting (scheduled or ready) occurrence of schedule s: its id and decoded record; nil
-- when there is none, or it is running or dead (it is left alone). Nothing is written.
local function find_waiting(sid, s)
  if s[S_NEXT] == 0 then return nil end
  local waiting_id = sid .. '@' .. iso(s[S_NEXT])
  local raw = redis.call('HGET', jobs_key, waiting_id)
  if not raw then return nil end
  local job = decode(raw)
  if job[STATE] ~= SCHEDULED and job[STATE] ~= READY then return nil end
  return waiting_id, job
end

-- Takes a waiting occurrence out of its state's index: it is replaced in place or ended next.
local function take_out(waiting_id, job)
  if job[STATE] == SCHEDULED then
    redis.call('ZREM', scheduled_key, waiting_id)
  else
    redis.call('ZREM', ready_key, string.format('%012x', job[SEQ]) .. waiting_id)
  end
end

-- Ends a waiting occurrence that take_out took out as a deleted job (outcome cancelled).
local function end_waiting(waiting_id, job, detail)
  local last_error = redis.call('HGET', errors_key, waiting_id)
  redis.call('HDEL', jobs_key, waiting_id)
  redis.call('HDEL', errors_key, waiting_id)
  add_event(waiting_id, job, 'deleted', detail)
  finish(waiting_id, job, 'cancelled', nil, last_error)
end

local raw = redis.call('HGET', schedules_key, id)
-- a partitioned topic (partition_setting.py) takes no new schedule of its own
if settings[8] and not raw then return {PARTITIONED, settings[8] + 0, 0} end
local old = raw and {cmsgpack.unpack(raw)}
local current = old and old[S_VERSION] or 0
-- a schedule that ended before it was made would never run: the caller is told, not stored
if end_at > 0 and end_at <= now then return {ENDED, current, 0} end
if if_version and if_version ~= current then return {VERSION_CONFLICT, current, 0} end

local defaults = redis.call('HMGET', meta_key, 'ttr', 'max_attempts', 'paused')
local s = {}
s[S_VERSION], s[S_EVERY], s[S_END_AT], s[S_NEXT] = current + 1, every, end_at, 0
s[S_LAST], s[S_PRIORITY] = old and old[S_LAST] or 0, priority
s[S_TTR] = ttr_arg or tonumber(defaults[1]) or DEFAULT_TTR_MS
s[S_MAX_ATTEMPTS] = attempts_arg or tonumber(defaults[2]) or DEFAULT_MAX_ATTEMPTS
s[S_BODY], s[S_CRON], s[S_TZ], s[S_START_AT] = ARGV[13], ARGV[11], ARGV[12], start_at
local waiting_id, waiting
if old then waiting_id, waiting = find_waiting(id, old) end

-- the first occurrence: at or after now and start_ms, after the latest one reserved; or the
-- waiting occurrence already due (not run yet) when its time is one of the new schedule's:
-- declaring a schedule again, as an app does at each start, never skips a run that is due
local earliest = math.max(now, start_at, s[S_LAST] + 1000)
-- (a waiting occurrence rescheduled past now is not due: it ends as before)
local due = waiting and old[S_NEXT] < now and waiting[RUN_AT] < now and old[S_NEXT] >= start_at
  and old[S_NEXT]
local next_at, latest_sent = 0, nil
if every > 0 then
  if not anchor then
    anchor = (old and old[S_EVERY] > 0) and old[S_ANCHOR]
      or math.max(start_at, math.ceil(now / 1000) * 1000)
  end
  if due and due >= anchor and (due - anchor) % every == 0 then
    earliest = math.max(due, s[S_LAST] + 1000)
  end
  next_at = anchor
  if next_at < earliest then
    next_at = anchor + math.ceil((earliest - anchor) / every) * every
  end
else
  anchor = 0
  latest_sent = times[#times]
  -- the glue's times start a minute before now: the due one may be among them, or older; it
  -- is one of the new schedule's when its cron and zone are the same
  if due and old[S_EVERY] == 0 and old[S_CRON] == ARGV[11] and old[S_TZ] == ARGV[12] then
    while #times > 0 and times[1] < due do table.remove(times, 1) end
    if times[1] ~= due then table.insert(times, 1, due) end
    earliest = math.max(due, s[S_LAST] + 1000)
  end
  while #times > 0 and times[1] < earliest do table.remove(times, 1) end
  next_at = table.remove(times, 1) or 0
end
-- a time whose id a live job holds (an occurrence of the schedule this one replaces after an
-- unschedule, still running in this very second) is passed over: the create-only put would
-- keep that job, and a record naming it as pending would never advance again
while next_at > 0 and next_at <= LAST_RUN_AT and not (waiting and waiting_id == id .. '@'
    .. iso(next_at)) and redis.call('HEXISTS', jobs_key, id .. '@' .. iso(next_at)) == 1 do
  next_at = every > 0 and next_at + every or (table.remove(times, 1) or 0)
end
-- the glue's cron times from now all come before the first one the schedule may run (more
-- runs skipped or leased ahead than a record holds): stored so, it would never run again, so
-- the glue is told where to start and sends later ones; an end before them is refused below
if latest_sent and next_at == 0 and (end_at == 0 or end_at > latest_sent) then
  return {TIMES_TOO_EARLY, current, math.max(latest_sent, earliest - 1)}
end
-- a schedule whose first occurrence comes after its end would never run either (the glue
-- sends a cron schedule with an end only its times up to it: none left is the same)
if end_at > 0 and (next_at > end_at or next_at == 0) then return {ENDED, current, 0} end
if next_at > LAST_RUN_AT then next_at = 0 end
s[S_ANCHOR], s[S_TIMES] = anchor, times
if waiting then take_out(waiting_id, waiting) end

local next_id = next_at > 0 and id .. '@' .. iso(next_at)
if waiting and waiting_id ~= next_id then -- it will not run: it ends as a deleted job
  end_waiting(waiting_id, waiting, SCHEDULE_REPLACED)
  waiting = nil
end
if next_at > 0 then
  s[S_NEXT] = next_at
  if place_occurrence(next_id, next_at, s, waiting) and defaults[3] ~= '1' then
    redis.call('PUBLISH', wake_channel, tostring(next_at))
  end
end
redis.call('HSET', schedules_key, id, cmsgpack.pack(unpack(s, 1, S_TIMES)))
redis.call('ZREM', refill_key, id)
flush()
return {old and REPLACED or CREATED, current + 1, next_at}
