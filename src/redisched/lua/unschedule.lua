-- unschedule: delete a schedule by id and its waiting occurrence; a running one is kept.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] errors hash
-- KEYS[5] schedules hash
-- KEYS[6] refill zset
-- KEYS[7] meta hash
-- KEYS[8] feed stream
-- KEYS[9] history hash
-- KEYS[10] finished zset
-- ARGV[1] id string
-- ARGV[2] if_version int|empty
-- ARGV[3] now_ms int|empty
-- Returns: [status, version]. status: 1 deleted (version is the deleted one), 0 no such
--   schedule, 5 version conflict (if_version did not match; nothing changed), 6 partitioned
--   (no such schedule, and the topic is spread over partitions, meta field partitions: a
--   schedule made over HTTP or the CLI lives in its id's partition; version is the partition
--   count). The waiting
--   occurrence is deleted when it is scheduled or ready, and ends as delete.lua ends a job: a
--   deleted event (detail 'unscheduled') and a finished record with outcome cancelled. A
--   reserved (running) or dead one stays, and ends as any job does.
-- Complexity: O(log M).
local jobs_key, scheduled_key, ready_key, errors_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local schedules_key, refill_key, meta_key, feed_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local history_key, finished_key = KEYS[9], KEYS[10]
if #KEYS ~= 10 then return redis.error_reply('ERR unschedule: expected 10 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local NOT_FOUND, DELETED, VERSION_CONFLICT, PARTITIONED = 0, 1, 5, 6
local UNSCHEDULED = 'unscheduled' -- the detail of its waiting occurrence's deleted event
local id, if_version = ARGV[1], tonumber(ARGV[2])
if ARGV[2] ~= '' and not (if_version and if_version % 1 == 0 and if_version >= 1) then
  return redis.error_reply('ERR unschedule: if_version must be an integer >= 1 or empty')
end
local now = tonumber(ARGV[3])
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if ARGV[3] ~= '' then
    return redis.error_reply('ERR unschedule: now_ms must be an integer >= 0')
  end
  clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR unschedule: now_ms must be an integer >= 0')
end

local raw = redis.call('HGET', schedules_key, id)
if not raw then -- (meta read only then: a partitioned topic's own name may hold schedules)
  local partitions = redis.call('HGET', meta_key, 'partitions')
  if partitions then return {PARTITIONED, partitions + 0} end
  return {NOT_FOUND, 0}
end
local s = {cmsgpack.unpack(raw)}
if if_version and if_version ~= s[S_VERSION] then return {VERSION_CONFLICT, s[S_VERSION]} end

-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local EVENT = {put = 1, replaced = 2, reserved = 3, released = 4, requeued = 5, retried = 6,
  touched = 7, buried = 8, dead = 9, kicked = 10, acked = 11, deleted = 12, pulled = 13,
  expired = 14}
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'keep_finished',
  'keep_finished_for_ms', 'keep_dead', 'keep_dead_for_ms', 'feed_epoch')
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


-- The waiting (scheduled or ready) occurrence of schedule s, taken out of its sorted set: its
-- id and decoded record; nil when there is none, or it is running or dead (it is left alone).
local function take_waiting(sid, s)
  if s[S_NEXT] == 0 then return nil end
  local waiting_id = sid .. '@' .. iso(s[S_NEXT])
  local raw = redis.call('HGET', jobs_key, waiting_id)
  if not raw then return nil end
  local job = decode(raw)
  if job[STATE] == SCHEDULED then
    redis.call('ZREM', scheduled_key, waiting_id)
  elseif job[STATE] == READY then
    redis.call('ZREM', ready_key, string.format('%012x', job[SEQ]) .. waiting_id)
  else
    return nil
  end
  return waiting_id, job
end

-- Ends a waiting occurrence that take_waiting took out as a deleted job (outcome cancelled).
local function end_waiting(waiting_id, job, detail)
  local last_error = redis.call('HGET', errors_key, waiting_id)
  redis.call('HDEL', jobs_key, waiting_id)
  redis.call('HDEL', errors_key, waiting_id)
  add_event(waiting_id, job, 'deleted', detail)
  finish(waiting_id, job, 'cancelled', nil, last_error)
end

local waiting_id, waiting = take_waiting(id, s) -- a running or dead occurrence is left alone
if waiting_id then end_waiting(waiting_id, waiting, UNSCHEDULED) end
redis.call('HDEL', schedules_key, id)
redis.call('ZREM', refill_key, id)
flush()
return {DELETED, s[S_VERSION]}
