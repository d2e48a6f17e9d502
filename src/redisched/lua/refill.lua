-- refill: give a cron schedule more upcoming times; put its next occurrence if it ran dry.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] schedules hash
-- KEYS[4] refill zset
-- KEYS[5] meta hash
-- KEYS[6] wake channel
-- KEYS[7] feed stream
-- KEYS[8] history hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string
-- ARGV[3] version int
-- ARGV[4] time int...
-- Returns: [status, next_ms]. status: 1 refilled, 0 stale (no such schedule, another version,
--   or an interval schedule: nothing changed but the refill set). The times (ascending UTC ms
--   computed by the glue) later than the ones held are appended. A schedule with no pending
--   occurrence (it ran out of times before a refill) gets the first time after now and last_ms
--   whose id no live job holds: missed times are skipped. No times at all ends a schedule that ran
--   dry (its end_at came). The schedule leaves the refill set. A new occurrence gets a put event, like any put.
-- Complexity: O(T + log M) for T times.
local jobs_key, scheduled_key, schedules_key, refill_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local meta_key, wake_channel, feed_key, history_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
if #KEYS ~= 8 then return redis.error_reply('ERR refill: expected 8 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
-- A schedule's record: a MessagePack stream of these fields, in this order (lua/README.md).
local S_VERSION, S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_PRIORITY, S_TTR,
  S_MAX_ATTEMPTS, S_BODY, S_CRON, S_TZ, S_START_AT, S_TIMES =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
local STALE, REFILLED = 0, 1
local now = tonumber(ARGV[1])
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if ARGV[1] ~= '' then return redis.error_reply('ERR refill: now_ms must be an integer >= 0') end
  clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR refill: now_ms must be an integer >= 0')
end
local id, version = ARGV[2], tonumber(ARGV[3])
if not version or version % 1 ~= 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR refill: version must be an integer')
end
local times = {}
for i = 4, #ARGV, 1 do
  local time = tonumber(ARGV[i])
  if not time or time % 1000 ~= 0 then
    return redis.error_reply('ERR refill: times must be whole seconds')
  end
  times[#times + 1] = time
end

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

-- Puts the occurrence of schedule s at `at` (create-only: an existing id is left alone); its
-- version goes on from a finished record of the same id (versions never repeat for an id,
-- as put.lua; inline: a closure made on every call costs Redis ~0.5 us, used or not).
local function put_occurrence(id, at, s)
  if redis.call('HEXISTS', jobs_key, id) == 1 then return false end
  -- the record's fields, the schedule's and the finished record's as locals, not upvalues
  -- (flush_feed says why)
  local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY, LOG =
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10
  local SCHEDULED, S_PRIORITY, S_TTR, S_MAX_ATTEMPTS, S_BODY, F_VERSION = 1, 7, 8, 9, 10, 3
  local job = {}
  -- a record kept from before history was turned off holds versions too: read either way
  local ended = redis.call('HGET', history_key, id)
  local version = tonumber(redis.call('HGET', meta_key, 'version_floor')) or 0
  if ended then -- unpack_limit's first value is the offset read, then the fields
    version = math.max(version, ({cmsgpack.unpack_limit(ended, F_VERSION)})[F_VERSION + 1])
  end
  version = version + 1
  job[STATE], job[VERSION], job[ATTEMPTS] = SCHEDULED, version, 0
  job[PRIORITY], job[TTR], job[MAX_ATTEMPTS] = s[S_PRIORITY], s[S_TTR], s[S_MAX_ATTEMPTS]
  job[RUN_AT], job[SEQ], job[BODY] = at, 0, s[S_BODY]
  add_event(id, job, 'put')
  if history_on and at > now then job[LOG], job[SEQ] = nil, at - now end -- implied (put.lua)
  redis.call('HSET', jobs_key, id, encode(job))
  redis.call('ZADD', scheduled_key, at, id)
  redis.call('HINCRBY', meta_key, 'total_put', '1') -- an occurrence counts as a put
  return true
end

redis.call('ZREM', refill_key, id)
local raw = redis.call('HGET', schedules_key, id)
if not raw then return {STALE, 0} end
local s = {cmsgpack.unpack(raw)}
if s[S_VERSION] ~= version or s[S_EVERY] > 0 then return {STALE, s[S_NEXT]} end

local held = s[S_TIMES]
local latest = math.max(held[#held] or 0, s[S_NEXT], s[S_LAST])
for _, time in ipairs(times) do
  if time > latest then
    held[#held + 1] = time
    latest = time
  end
end
if s[S_NEXT] == 0 then
  -- ran dry: skip the missed times, put the first one after now
  local earliest = math.max(now + 1, s[S_LAST] + 1000)
  while #held > 0 and held[1] < earliest do table.remove(held, 1) end
  local next_at = table.remove(held, 1)
  -- a time whose id a live job holds is passed over (as advance_schedule): the create-only
  -- put would keep that job, which may be running or dead and never advance the chain
  while next_at and redis.call('HEXISTS', jobs_key, id .. '@' .. iso(next_at)) == 1 do
    next_at = table.remove(held, 1)
  end
  if next_at and (s[S_END_AT] == 0 or next_at <= s[S_END_AT]) then
    s[S_NEXT] = next_at
    if put_occurrence(id .. '@' .. iso(next_at), next_at, s)
        and redis.call('HGET', meta_key, 'paused') ~= '1' then
      redis.call('PUBLISH', wake_channel, tostring(next_at))
    end
  end
end
s[S_TIMES] = held
redis.call('HSET', schedules_key, id, cmsgpack.pack(unpack(s, 1, S_TIMES)))
feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
return {REFILLED, s[S_NEXT]}
