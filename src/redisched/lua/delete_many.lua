-- delete_many: remove jobs by id, only those still in the given state (or in any state).
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] dead zset
-- KEYS[6] pending hash
-- KEYS[7] errors hash
-- KEYS[8] wake channel
-- KEYS[9] meta hash
-- KEYS[10] feed stream
-- KEYS[11] history hash
-- KEYS[12] finished zset
-- KEYS[13] schedules hash
-- KEYS[14] refill zset
-- ARGV[1] now_ms int|empty
-- ARGV[2] state string|empty
-- ARGV[3] id string...
-- Returns: the number of jobs deleted. With a state, a job found in another state (it moved
--   since it was listed) is left as it is; a scheduled job whose run_at has passed is ready,
--   as jobs.lua lists it. Empty state deletes in any state, as delete.lua does. Each deleted
--   job ends as delete.lua ends it: a deleted event and a finished record with outcome
--   cancelled (dead when it was dead); a reserved one's holder is told to stop (c<token>:<id> on
--   the wake channel) and its deleted event says so (detail 'was running; cancel sent'),
--   and a consumer held back by the topic's concurrency (meta limit_waiting) is woken. A
--   deleted pending occurrence of a schedule skips that run: the next one is put (delete.lua).
-- Complexity: O(N log M) for N ids.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead_key, pending_key, errors_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local meta_key, feed_key, history_key, finished_key = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local schedules_key, refill_key = KEYS[13], KEYS[14]
if #KEYS ~= 14 then return redis.error_reply('ERR delete_many: expected 14 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local CANCEL = 'c' -- a wake message naming a reservation to cancel: CANCEL .. token .. ':' .. id
local LIMIT_WAITING = 'limit_waiting'  -- meta field: limit.lua holds a consumer back
local CANCEL_SENT = 'was running; cancel sent' -- the deleted event's detail for a running job
local now = tonumber(ARGV[1])
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if ARGV[1] ~= '' then
    return redis.error_reply('ERR delete_many: now_ms must be an integer >= 0')
  end
  clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR delete_many: now_ms must be an integer >= 0')
end
local STATES = {scheduled = SCHEDULED, ready = READY, reserved = RESERVED, dead = DEAD}
local wanted = STATES[ARGV[2]]
if ARGV[2] ~= '' and not wanted then
  return redis.error_reply('ERR delete_many: state must be scheduled, ready, reserved or dead')
end

-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local EVENT = {put = 1, replaced = 2, reserved = 3, released = 4, requeued = 5, retried = 6,
  touched = 7, buried = 8, dead = 9, kicked = 10, acked = 11, deleted = 12, pulled = 13,
  expired = 14}
local FEED_FIELDS = 2
local BULK_ENTRY_EVENTS = 200 -- the loop below flushes the feed at this many events
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
local SLICE = 1000 -- ids per command (unpack() takes a bounded number of values)

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

-- finish() for many jobs: the finished records of the jobs (decoded records, with their ids
-- and last errors) that ended now with `outcome`, in one HSET and one ZADD.
local function finish_bulk(ids, jobs, outcome, last_errors)
  ended[outcome] = ended[outcome] + #ids
  local VERSION, ATTEMPTS, LOG = 2, 3, 10 -- locals, not upvalues (flush_feed says why)
  if not history_on then -- no record keeps their versions: version_floor does (flush)
    for _, job in ipairs(jobs) do ended.top = math.max(ended.top or 0, job[VERSION]) end
    return
  end
  if #ids == 0 then return end
  -- the score as text once: redis.call would format the number again for every job
  local code, at, records, members = OUTCOMES[outcome], string.format('%.17g', now), {}, {}
  for i, id in ipairs(ids) do
    local job = jobs[i]
    -- the finished record's fields, OUTCOME .. EVENTS in their order (no table to build)
    records[#records + 1], records[#records + 2] = id, cmsgpack.pack(code, now, job[VERSION],
      job[ATTEMPTS], false, last_errors[i] or false, job[LOG] or '\0')
    members[#members + 1], members[#members + 2] = at, id
  end
  redis.call('HSET', history_key, unpack(records))
  redis.call('ZADD', finished_key, unpack(members))
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

-- delete.lua's work for a slice of ids at once: one HMGET per hash read, one ZREM per sorted
-- set, one HDEL per hash, and the finished records in one HSET and one ZADD.
local deleted, seen, occurrences, run_ats = 0, {}, {}, {}
local function delete_slice(slice)
  local raws = redis.call('HMGET', jobs_key, unpack(slice))
  local doomed, jobs, members = {}, {}, {[SCHEDULED] = {}, [READY] = {}, [RESERVED] = {},
    [DEAD] = {}}
  for i, id in ipairs(slice) do
    if raws[i] and not seen[id] then
      seen[id] = true
      local job = decode(raws[i])
      local state = job[STATE]
      local shown = state
      if state == SCHEDULED and job[RUN_AT] <= now then shown = READY end
      if not wanted or shown == wanted then
        doomed[#doomed + 1], jobs[#jobs + 1] = id, job
        local into = members[state]
        into[#into + 1] = state == READY and string.format('%012x', job[SEQ]) .. id or id
        if state == RESERVED then
          redis.call('PUBLISH', wake_channel, CANCEL .. string.format('%d', job[SEQ]) .. ':' .. id)
        end
      end
    end
  end
  if #doomed == 0 then return end
  for state, key in pairs({[SCHEDULED] = scheduled_key, [READY] = ready_key,
      [RESERVED] = reserved_key, [DEAD] = dead_key}) do
    if #members[state] > 0 then redis.call('ZREM', key, unpack(members[state])) end
  end
  -- a reserved job's place is free: wake a consumer a concurrency limit holds back
  if #members[RESERVED] > 0 and redis.call('HDEL', meta_key, LIMIT_WAITING) == 1 then
    redis.call('PUBLISH', wake_channel, '0')
  end
  local pendings = redis.call('HMGET', pending_key, unpack(doomed))
  local errors = redis.call('HMGET', errors_key, unpack(doomed))
  redis.call('HDEL', jobs_key, unpack(doomed))
  redis.call('HDEL', pending_key, unpack(doomed))
  redis.call('HDEL', errors_key, unpack(doomed))
  deleted = deleted + #doomed
  local by_outcome = {cancelled = {{}, {}, {}}, dead = {{}, {}, {}}} -- ids, jobs, last errors
  for i, id in ipairs(doomed) do
    local job = jobs[i]
    if pendings[i] then job[VERSION] = decode(pendings[i])[VERSION] end
    add_event(id, job, 'deleted', job[STATE] == RESERVED and CANCEL_SENT or nil)
    if string.find(id, '@', 1, true) then
      local n = #occurrences + 1
      occurrences[n], run_ats[n] = id, job[RUN_AT]
    end
    local into = by_outcome[job[STATE] == DEAD and 'dead' or 'cancelled']
    local n = #into[1] + 1
    into[1][n], into[2][n], into[3][n] = id, job, errors[i]
    if #feed >= BULK_ENTRY_EVENTS * FEED_FIELDS then
      feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
    end
  end
  for outcome, found in pairs(by_outcome) do finish_bulk(found[1], found[2], outcome, found[3]) end
end

local slice = {}
for i = 3, #ARGV, 1 do
  slice[#slice + 1] = ARGV[i]
  if #slice == SLICE or i == #ARGV then
    delete_slice(slice)
    slice = {}
  end
end
if #occurrences == 0 then
  flush()
  return deleted
end

-- Schedules: deleting a schedule's pending occurrence skips that run and puts the next one, as
-- leasing it does (reserve.lua); a retried, running or dead occurrence is not the pending one.
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
local function advance_schedule(id, run_at) -- run_at: a deleted job's (else nil)
  if not string.find(id, '@', 1, true) then return end
  -- the schedule's fields and the limits as locals, not upvalues (flush_feed says why)
  local S_EVERY, S_ANCHOR, S_END_AT, S_NEXT, S_LAST, S_TIMES = 2, 3, 4, 5, 6, 14
  local REFILL_BELOW, LAST_RUN_AT = 16, 253402300799000
  local at = string.find(id, '@[^@]*$')
  local sid = string.sub(id, 1, at - 1)
  local raw = redis.call('HGET', schedules_key, sid)
  if not raw then return end
  local s = {cmsgpack.unpack(raw)}
  if s[S_NEXT] == 0 or string.sub(id, at + 1) ~= iso(s[S_NEXT]) then return end
  local after, next_at = math.max(now, s[S_NEXT], run_at or 0), 0
  -- a time whose id a live job holds (a job put under an occurrence's name) is passed over:
  -- the create-only put would keep that job, which may be running or dead and never advance
  repeat
    if s[S_EVERY] > 0 then  -- missed occurrences collapse: the next one is in the future
      next_at = s[S_ANCHOR] + (math.floor((after - s[S_ANCHOR]) / s[S_EVERY]) + 1) * s[S_EVERY]
    else
      local times = s[S_TIMES]
      while #times > 0 and times[1] <= after do table.remove(times, 1) end
      next_at = table.remove(times, 1) or 0
      if #times < REFILL_BELOW then redis.call('ZADD', refill_key, 'NX', now, sid) end
    end
    if next_at > LAST_RUN_AT or (s[S_END_AT] > 0 and next_at > s[S_END_AT]) then next_at = 0 end
    after = next_at
  -- put_occurrence reads only the occurrence's options from s, and its HEXISTS is the check
  until next_at == 0 or put_occurrence(sid .. '@' .. iso(next_at), next_at, s)
  -- a deleted run moved past now was skipped at its run_at (to the second): a replace, and
  -- the refill of a cron schedule it left dry, go on after it
  local skipped_at = run_at and run_at > now and run_at - run_at % 1000 or 0
  s[S_LAST], s[S_NEXT] = math.max(s[S_NEXT], skipped_at), next_at
  redis.call('HSET', schedules_key, sid, cmsgpack.pack(unpack(s, 1, S_TIMES)))
end

-- history off: the versions this call ended raise version_floor now, before an occurrence is
-- put again (put_occurrence reads it; flush() would raise it only after)
if ended.top then
  local floor = tonumber(redis.call('HGET', meta_key, 'version_floor')) or 0
  if ended.top > floor then
    redis.call('HSET', meta_key, 'version_floor', string.format('%d', ended.top))
  end
  ended.top = nil
end
-- an id that an earlier advance of this call put again is that schedule's new pending
-- occurrence: the job deleted under it was not the pending one (the chain moves once,
-- whatever the order of the ids)
for i, id in ipairs(occurrences) do
  if redis.call('HEXISTS', jobs_key, id) == 0 then advance_schedule(id, run_ats[i]) end
end
flush()
return deleted
