-- ack: finish reserved jobs; a replacement that waited for the attempt is scheduled.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] pending hash
-- KEYS[6] errors hash
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- KEYS[9] feed stream
-- KEYS[10] history hash
-- KEYS[11] finished zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] id string...
-- ARGV[3] token string...
-- ARGV[4] result bytes...
-- Returns: an array with one status per (id, token, result) triple: 1 acked, 0 stale (the
--   token is not the job's current reservation: it was requeued, re-reserved, deleted or
--   already acked; nothing changed). ARGV[2..4] repeat per job. An acked job gets an acked
--   event and, unless a replacement waited for it, a finished record with outcome done and
--   its result (empty: none; the first 65536 bytes of a longer one, said in the event).
--   Acking frees a place under the topic's concurrency: a consumer waiting for one (limit.lua)
--   is woken with 0 on the wake channel. Finished records beyond keep_finished or past
--   keep_finished_for go only on the ack whose finished_done passes a multiple of
--   keep_finished / 10 (1..100): up to that many - 1 more records stay (the end of the script).
-- Complexity: O(N log M) for N jobs.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending_key, errors_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local feed_key, history_key, finished_key = KEYS[9], KEYS[10], KEYS[11]
if #KEYS ~= 11 then return redis.error_reply('ERR ack: expected 11 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local STALE, ACKED = 0, 1
local LIMIT_WAITING = 'limit_waiting'  -- meta field: limit.lua holds a consumer back
local now, now_text = ARGV[1] ~= '' and tonumber(ARGV[1]), nil
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if now == nil then return redis.error_reply('ERR ack: now_ms must be an integer >= 0') end
  clock = redis.call('TIME')
  -- the ms as text (the finished records' score, no format), then as a number: one tonumber
  now_text = clock[1] .. string.sub('00000' .. clock[2], -6, -4)
  now = tonumber(now_text)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0 (Lua 5.1)
  return redis.error_reply('ERR ack: now_ms must be an integer >= 0')
end
if #ARGV < 4 or #ARGV % 3 ~= 1 then
  return redis.error_reply('ERR ack: expected id/token/result triples')
end
local RESULT_LIMIT = 65536

-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local LOG = 10
-- the kind this script records, EVENT's acked (a table of all 14 costs Redis ~5,000
-- instructions a call)
local EVENT_ACKED, EVENT_FORMAT, EVENT_HEADER, MAX_EVENTS = 11, '>BdIIH', 19, 16
-- only the fields this script reads: each costs Redis ~0.2 us (a scan of meta)
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'keep_finished',
  'feed_epoch', LIMIT_WAITING)
local history_on = settings[1] ~= '0'
local keep_events = settings[2] and tonumber(settings[2]) or 10000 -- no tonumber of false
local feed_epoch = settings[4] -- false until the feed's first entry (flush_feed)
-- the call's events for the feed (flush_feed): made at the first, as a table of two (no
-- resize); none when no event was added (no table made)
local feed

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

local DONE = 1 -- the outcome of every job that ack finishes
local TRIM_PER_CALL, FINISHED_TRIM_JOBS = 10, 100
local keep_finished = settings[3] and tonumber(settings[3]) or 10000
local SLICE = 1000 -- ids per command (unpack() takes a bounded number of values)

-- The writes that every acked job needs go in one command per kind after the loop (SLICE ids
-- per command): done, the acked ids (out of reserved); errored, those with a last_error; gone,
-- those that end (ended counts them), whose finished records (records: id, record, ...) go to
-- history, and then the same table, turned into score, id, ..., to finished (no second table).
-- An id acked earlier in the call (seen) is stale, as its record is gone or replaced. A call
-- of one job (one, the common case) makes none of these tables: its job's writes are the same
-- commands, at the end of its turn of the loop, which is the end of the loop.
local one = #ARGV == 4
local acked, ended, done, records, seen = 0, 0, not one and {}, not one and {}, not one and {}
local ended_top = 0 -- history off: the highest version that ended, for version_floor (below)
-- An empty hash is no key: when neither errors nor pending exists (the common case), one
-- EXISTS saves reading both for every job (nothing in the loop creates either). Only then
-- may a job have a last_error (errored) or a waiting replacement (it is acked but does not
-- end): else gone is done.
local lookup = redis.call('EXISTS', errors_key, pending_key) > 0
local errored, gone = lookup and not one and {}, lookup and not one and {} or done
-- the records in one HMGET per SLICE ids, not an HGET each (raws: the first reply, the others
-- appended; one job's id needs no list), each replaced by its job's status once read: raws is
-- the reply (no table of its own); the finished records' score (now) as text once, not
-- formatted again by redis.call for every job
local raws, finished_at = nil, now_text or string.format('%.17g', now)
if one then
  raws = redis.call('HMGET', jobs_key, ARGV[2])
else
  local ids = {}
  for i = 2, #ARGV, 3 do ids[#ids + 1] = ARGV[i] end
  for first = 1, #ids, SLICE do
    local last = math.min(first + SLICE - 1, #ids)
    local got = redis.call('HMGET', jobs_key, unpack(ids, first, last))
    if not raws then raws = got else for k = first, last do raws[k] = got[k - first + 1] end end
  end
end
for i = 2, #ARGV, 3 do
  local id, token, result, k = ARGV[i], ARGV[i + 1], ARGV[i + 2], (i + 1) / 3
  local raw = (one or not seen[id]) and raws[k]
  local status = STALE
  if raw then
    -- decoded without decode() and materialize() of the other scripts (three closures fewer
    -- per call): a record is acked only when reserved, and a pending one has SEQ 0, so
    -- materialize() (a scheduled job's implied put event) never changes one here
    local job = {cmsgpack.unpack(raw)}
    -- a token is the exact text reserve gave (its SEQ, '%d'): tonumber would take ' 3',
    -- '3.0' or '0x3' for '3'
    if job[STATE] == RESERVED and string.format('%d', job[SEQ]) == token then
      status, acked = ACKED, acked + 1
      local last_error = lookup and redis.call('HGET', errors_key, id)
      local note
      if #result > RESULT_LIMIT then
        note = 'result truncated to ' .. RESULT_LIMIT .. ' of ' .. #result .. ' bytes'
        result = string.sub(result, 1, RESULT_LIMIT)
      end
      -- add_event(id, job, 'acked', note) of the other scripts, inline (as reserve.lua's
      -- reserved event): its closure, made on every call, cost Redis ~4,000 instructions; keep
      -- this in step with add_event. A note is short ASCII text: never cut to MAX_DETAIL.
      if history_on then
        local log = job[LOG] or '\0'
        local events = string.byte(log) -- (add_event's `count`)
        if events >= MAX_EVENTS then -- the first event (put) stays, the second goes
          local second = 2 + EVENT_HEADER + struct.unpack('>H', log, 2 + EVENT_HEADER - 2)
          log = string.sub(log, 1, second - 1) .. string.sub(log,
            second + EVENT_HEADER + struct.unpack('>H', log, second + EVENT_HEADER - 2))
          events = events - 1
        end
        local event = struct.pack(EVENT_FORMAT, EVENT_ACKED, now, job[VERSION], job[ATTEMPTS],
          note and #note or 0)
        if note then event = event .. note end
        job[LOG] = string.char(events + 1) .. string.sub(log, 2) .. event
        if keep_events > 0 then -- the same bytes, then the job's id (feed.lua)
          if not feed then
            feed = {event, id} -- sized at once: two inserts into an empty table resize it twice
          else
            local n = #feed
            feed[n + 1], feed[n + 2] = event, id
          end
        end
      else
        job[LOG] = nil
      end
      local pending, record = lookup and redis.call('HGET', pending_key, id), nil
      if pending then -- the waiting replacement: scheduled (or ready, when due) now
        local log = job[LOG]
        job = {cmsgpack.unpack(pending)}
        job[LOG], job[ATTEMPTS] = log, 0
        redis.call('HDEL', pending_key, id)
        if job[RUN_AT] <= now then
          job[STATE], job[SEQ] = READY, redis.call('HINCRBY', meta_key, 'seq', 1)
          redis.call('ZADD', ready_key, job[PRIORITY], string.format('%012x', job[SEQ]) .. id)
          redis.call('PUBLISH', wake_channel, '0')
        else
          job[STATE], job[SEQ] = SCHEDULED, 0
          redis.call('ZADD', scheduled_key, job[RUN_AT], id)
          redis.call('PUBLISH', wake_channel, tostring(job[RUN_AT]))
        end
        -- encode() of the other scripts, inline: a closure made on every call for a rare path
        redis.call('HSET', jobs_key, id, cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY)))
      else -- it ends: the finished record, outcome done (finish() of bury.lua, for many jobs)
        ended = ended + 1
        if history_on then
          -- the finished record's fields (outcome .. events) in their order, packed as they
          -- are (no table to build and drop)
          record = cmsgpack.pack(DONE, now, job[VERSION], job[ATTEMPTS],
            result ~= '' and result or false, last_error or false, job[LOG] or '\0')
        elseif job[VERSION] > ended_top then
          ended_top = job[VERSION]
        end
      end
      if one then -- the commands the lists below would give
        redis.call('ZREM', reserved_key, id)
        if last_error then redis.call('HDEL', errors_key, id) end
        if not pending then redis.call('HDEL', jobs_key, id) end
        if record then
          redis.call('HSET', history_key, id, record)
          redis.call('ZADD', finished_key, finished_at, id)
        end
      else
        done[acked], seen[id] = id, true
        if last_error then errored[#errored + 1] = id end
        if lookup and not pending then gone[ended] = id end
        if record then
          local n = #records
          records[n + 1], records[n + 2] = id, record
        end
      end
    end
  end
  raws[k] = status
end
if not one then
  for first = 1, #done, SLICE do
    redis.call('ZREM', reserved_key, unpack(done, first, math.min(first + SLICE - 1, #done)))
  end
  for first = 1, lookup and #errored or 0, SLICE do
    redis.call('HDEL', errors_key, unpack(errored, first, math.min(first + SLICE - 1, #errored)))
  end
  for first = 1, ended, SLICE do
    redis.call('HDEL', jobs_key, unpack(gone, first, math.min(first + SLICE - 1, ended)))
  end
  for first = 1, #records, 2 * SLICE do
    local last = math.min(first + 2 * SLICE - 1, #records)
    redis.call('HSET', history_key, unpack(records, first, last))
    for k = first, last, 2 do records[k], records[k + 1] = finished_at, records[k] end
    redis.call('ZADD', finished_key, unpack(records, first, last))
  end
end
-- a count of one as text: Redis formats a number argument (~2,200 instructions)
if acked > 0 then redis.call('HINCRBY', meta_key, 'total_acked', acked == 1 and '1' or acked) end
-- history off: no finished record keeps an ended version, so version_floor does, above which
-- a new life of any id starts (put.lua; with history on, the trim below raises it)
if ended_top > 0 then
  local floor = tonumber(redis.call('HGET', meta_key, 'version_floor')) or 0
  if ended_top > floor then
    redis.call('HSET', meta_key, 'version_floor', string.format('%d', ended_top))
  end
end
if acked > 0 and settings[5] and redis.call('HDEL', meta_key, LIMIT_WAITING) == 1 then
  redis.call('PUBLISH', wake_channel, '0')
end
-- The end of the call, as flush() and trim() of bury.lua end it, inline (a closure made on
-- every call costs Redis ~0.5-1 us): the feed entry, finished_done, and retention by
-- keep_finished and keep_finished_for. Unlike flush(), not every call trims: only the one whose
-- finished_done passes a multiple of every (keep_finished / 10, between 1 and
-- FINISHED_TRIM_JOBS); the others skip its ZCARD, ZCOUNT, ZPOPMIN and HDEL (~20,000
-- instructions of a one-job ack). So finished holds up to every - 1 records more than
-- keep_finished, and records past keep_finished_for stay until the next trim (or any other
-- call that finishes jobs: those trim every call). A trim drops at most every - 1 +
-- TRIM_PER_CALL more than this call finished (every 1: flush()'s bound), in one HDEL per SLICE.
if feed then
  feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
end
if ended > 0 then
  local total = redis.call('HINCRBY', meta_key, 'finished_done', ended == 1 and '1' or ended)
  local every = math.max(1, math.min(FINISHED_TRIM_JOBS, math.floor(keep_finished / 10)))
  -- total passed a multiple of every (an integer, 1..FINISHED_TRIM_JOBS): its remainder is
  -- below what this call added (no math.floor)
  if history_on and total % every < ended then
    local keep_finished_for = tonumber(redis.call('HGET', meta_key, 'keep_finished_for_ms'))
      or 604800000 -- read only here: each field of the HMGET above costs every ack
    local n = math.min(math.max(redis.call('ZCARD', finished_key) - keep_finished,
      redis.call('ZCOUNT', finished_key, '-inf', now - keep_finished_for)),
      ended + every - 1 + TRIM_PER_CALL)
    -- a record within the topic's dedup_window stays (put.lua reads it); the versions of
    -- those dropped raise version_floor, above which a new life of any id starts (put.lua)
    local meta = n > 0 and redis.call('HMGET', meta_key, 'dedup_window_ms', 'version_floor')
    local window = meta and tonumber(meta[1])
    if window then
      n = math.min(n, redis.call('ZCOUNT', finished_key, '-inf', '(' .. now - window))
    end
    if n > 0 then
      local popped, dropped = redis.call('ZPOPMIN', finished_key, n), {} -- member, score, ...
      for i = 1, #popped, 2 do dropped[#dropped + 1] = popped[i] end
      local F_VERSION, floor = 3, tonumber(meta[2]) or 0
      local top = floor
      for start = 1, #dropped, SLICE do
        local slice = {unpack(dropped, start, math.min(start + SLICE - 1, #dropped))}
        for _, raw in ipairs(redis.call('HMGET', history_key, unpack(slice))) do
          if raw then
            top = math.max(top, ({cmsgpack.unpack_limit(raw, F_VERSION)})[F_VERSION + 1])
          end
        end
        redis.call('HDEL', history_key, unpack(slice))
      end
      if top > floor then
        redis.call('HSET', meta_key, 'version_floor', string.format('%d', top))
      end
    end
  end
end
return raws
