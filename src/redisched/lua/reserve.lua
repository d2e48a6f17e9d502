-- reserve: promote due jobs, then lease up to count ready jobs, each under a fresh token.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] reserved zset
-- KEYS[5] errors hash
-- KEYS[6] meta hash
-- KEYS[7] schedules hash
-- KEYS[8] refill zset
-- KEYS[9] feed stream
-- KEYS[10] history hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] count int|empty
-- ARGV[3] ttr_ms int|empty
-- ARGV[4] promote_limit int|empty
-- ARGV[5] times int|empty
-- Returns: [now_ms, next_due_ms, next_timeout_ms, job...]. next_due_ms is the run_at of the
--   earliest scheduled job and next_timeout_ms the earliest reservation deadline, each -1 when
--   there is none, so that a caller can sleep exactly until there is work (times 0: both -2,
--   not read, for a caller that does not sleep on them; empty or 1 reads them). Each job is the
--   array of get.lua with its token set and state reserved. A paused topic leases nothing.
--   Order: lowest priority number first, then the order in which jobs became ready (due jobs
--   are promoted in run_at order). Empty ttr_ms uses each job's own ttr. Leasing the pending
--   occurrence of a schedule puts the schedule's next occurrence (see schedule.lua). Each
--   leased job gets a reserved event (a schedule's next occurrence, a put event).
--   Promotion moves due jobs to ready in run_at order, at most min(promote_limit, count) per
--   call: a burst of jobs due at once goes to ready in steps the size of the leases, so that
--   no call runs long (a few µs per promoted job). When nothing was ready, the jobs promoted are
--   leased at once (they are the next in ready order), never written as ready.
--   Numbers are whole: count 1 to 10000, ttr_ms >= 1, promote_limit >= 0, times 0 or 1.
--   When no job was leased and the topic is spread over partitions (meta field partitions:
--   its jobs live in their ids' partitions), the reply ends with the partition count, an
--   integer, where the jobs would be: [now_ms, next_due_ms, next_timeout_ms, partitions]
--   (meta is read only then: a lease of a job costs nothing more).
-- Complexity: O((P + N) log M) for P promoted and N leased jobs.
local jobs_key, scheduled_key, ready_key, reserved_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local errors_key, meta_key, schedules_key, refill_key = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local feed_key, history_key = KEYS[9], KEYS[10]
if #KEYS ~= 10 then return redis.error_reply('ERR reserve: expected 10 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
-- An empty argument is not given to tonumber (each call costs Redis ~700 instructions: two
-- strtod of the text, one for lua_isnumber and one for lua_tonumber).
local now, now_text = ARGV[1] ~= '' and tonumber(ARGV[1]), ARGV[1]
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if now == nil then return redis.error_reply('ERR reserve: now_ms must be an integer >= 0') end
  clock = redis.call('TIME')
  -- the same ms as text (no format: µs' first 3 of 6 digits), then as a number (coerced by
  -- the addition: one strtod, no tonumber)
  local us = clock[2]
  now_text = clock[1] .. (#us == 6 and string.sub(us, 1, 3) or string.sub('00000' .. us, -6, -4))
  now = now_text + 0
elseif now % 1 ~= 0 or now < 0 then -- NaN, +-inf and fractions fail n % 1 == 0 (Lua 5.1)
  return redis.error_reply('ERR reserve: now_ms must be an integer >= 0')
end
local DEFAULT_COUNT, DEFAULT_PROMOTE_LIMIT, MAX_COUNT = 1, 1000, 10000
-- the usual texts (a count of one, the default limit as the clients send it) without tonumber
local count = ARGV[2] == '' and DEFAULT_COUNT or ARGV[2] == '1' and 1 or tonumber(ARGV[2])
local ttr_override = ARGV[3] ~= '' and tonumber(ARGV[3])
local promote_limit = (ARGV[4] == '' or ARGV[4] == '1000') and DEFAULT_PROMOTE_LIMIT
  or tonumber(ARGV[4])
-- next_due_ms and next_timeout_ms cost a ZRANGE WITHSCORES each (~7,000 instructions: Redis
-- formats the score as text, Lua parses it back): read only for a caller that sleeps on them
local times = ARGV[5] ~= '0'
if not count or count < 1 or not promote_limit or promote_limit < 0 then
  return redis.error_reply('ERR reserve: count must be >= 1 and promote_limit >= 0')
end
-- the usual texts above skip these: only a parsed number can be NaN, inf or a fraction
if count ~= DEFAULT_COUNT and (count % 1 ~= 0 or count > MAX_COUNT) then
  return redis.error_reply('ERR reserve: count must be an integer from 1 to 10000')
end
if promote_limit ~= DEFAULT_PROMOTE_LIMIT and promote_limit % 1 ~= 0 then
  return redis.error_reply('ERR reserve: promote_limit must be an integer >= 0')
end
if ttr_override ~= false
  and not (ttr_override and ttr_override % 1 == 0 and ttr_override >= 1) then
  return redis.error_reply('ERR reserve: ttr_ms must be an integer >= 1 or empty')
end
if times and ARGV[5] ~= '' and ARGV[5] ~= '1' then
  return redis.error_reply('ERR reserve: times must be 0, 1 or empty')
end

-- Numbers passed to redis.call are formatted as text by Redis (~2,200 instructions each): the
-- arguments that are often the same go as text. Made only for times (a closure made on every
-- call costs Redis ~400 instructions; the same body as limit.lua's local function).
local earliest
if times then
  earliest = function(key)
    local head = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')
    return tonumber(head[2]) or -1
  end
end

-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local LOG = 10
-- the kinds this script records: EVENT's put and reserved (the table, for add_event, is
-- made only for a schedule's next occurrence; one of all 14 kinds costs ~5,000 instructions)
local EVENT_PUT, EVENT_RESERVED = 1, 3
local EVENT_FORMAT, EVENT_HEADER, MAX_EVENTS = '>BdIIH', 19, 16
-- only the fields this script reads: each costs Redis ~0.2 us (a scan of meta)
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'feed_epoch', 'paused')
local history_on = settings[1] ~= '0'
local keep_events = tonumber(settings[2]) or 10000
local feed_epoch = settings[3] -- false until the feed's first entry (flush_feed)
-- A nil in a constructor sizes the table's array for one more value (Lua 5.1 has no
-- table.new), and # counts only the values before it: the feed, the reply and the lease's
-- arrays are made with room for a lease of one job, which then adds to them with no resize.
local feed = {nil, nil}

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

local reply = {now, -2, -2, nil} -- room for one job (see feed); it ends at its first nil
if settings[4] == '1' then -- paused
  if times then reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key) end
  -- a partitioned topic's name is said so (as below when nothing was leased)
  local partitions = redis.call('HGET', meta_key, 'partitions')
  if partitions then reply[4] = partitions + 0 end
  return reply
end

-- The earliest scheduled job first: when it is not due (the common case), it is the reply's
-- next_due_ms as well, and nothing is promoted. Without times, the due jobs are asked for
-- at once (members only: no score to format).
local promote, next_due = count < promote_limit and count or promote_limit, -2 -- math.min, inline
if times then next_due = earliest(scheduled_key) end
local due -- the due members, when asked for
if promote > 0 and (not times or next_due ~= -1 and next_due <= now) then
  due = redis.call('ZRANGEBYSCORE', scheduled_key, '-inf', now_text, 'LIMIT', '0',
    promote == 1 and '1' or promote)
end
-- the id and the decoded record of each job to lease, in ready order: lists, made when
-- jobs are promoted or more than one is ready; a lease of one ready job (the common case)
-- keeps its own in only_id and only_job instead (two tables fewer a call)
local ids, jobs, only_id, only_job
-- The records to write and the members to add go in one command per kind and SLICE jobs,
-- after each loop (a call of many jobs costs a few commands, not a few per job).
local SLICE = 1000
if due and #due > 0 then
  local promoted = #due
  local seq = redis.call('HINCRBY', meta_key, 'seq', promoted) - promoted
  -- With nothing ready, the jobs promoted now are the next ones in ready order (priority,
  -- then seq): all are leased (a call promotes no more than its count) as they are, decoded
  -- once and never written as ready.
  local straight = redis.call('ZCARD', ready_key) == 0
  -- their records in one HMGET per SLICE ids (unpack() takes a bounded number of values),
  -- decoded in due order, which is their seq order too
  local decoded, records, members = {}, {}, {}
  local first_priority, one_priority = nil, true -- one priority: due order is ready order
  for first = 1, promoted, SLICE do
    local last = math.min(first + SLICE - 1, promoted)
    local raws = redis.call('HMGET', jobs_key, unpack(due, first, last))
    for i = first, last do
      local job = {cmsgpack.unpack(raws[i - first + 1])}
      -- materialize() of the other scripts, inline (only promoted jobs need it, and a
      -- closure made on every call costs Redis ~0.5-1 us): a scheduled job unchanged since its
      -- put keeps no log, its SEQ holds run_at - the put's time (ms); it becomes the put event
      if history_on and not job[LOG] and job[STATE] == SCHEDULED and job[SEQ] ~= 0 then
        job[LOG] = '\1' .. struct.pack(EVENT_FORMAT, EVENT_PUT, job[RUN_AT] - job[SEQ],
          job[VERSION], 0, 0)
      end
      job[STATE], job[SEQ] = READY, seq + i
      decoded[i] = job
      first_priority = first_priority or job[PRIORITY]
      if job[PRIORITY] ~= first_priority then one_priority = false end
    end
  end
  -- the order to lease them in, only when their priorities differ (a sort's comparisons are
  -- Lua calls: ~1 µs per promoted job)
  local order
  if straight and not one_priority then
    order = {}
    for i = 1, promoted do order[i] = i end
    table.sort(order, function(a, b)
      local ja, jb = decoded[a], decoded[b]
      if ja[PRIORITY] ~= jb[PRIORITY] then return ja[PRIORITY] < jb[PRIORITY] end
      return ja[SEQ] < jb[SEQ]
    end)
  end
  ids, jobs = {}, {}
  for i = 1, promoted do
    local k = order and order[i] or i
    local id, job = due[k], decoded[k]
    if straight then
      ids[i], jobs[i] = id, job
    else
      local n = #records
      records[n + 1] = id
      records[n + 2] = cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY)) -- encode, inline
      members[n + 1], members[n + 2] = job[PRIORITY], string.format('%012x', job[SEQ]) .. id
    end
  end
  for first = 1, #records, 2 * SLICE do -- written as ready before the pop below
    local last = math.min(first + 2 * SLICE - 1, #records)
    redis.call('HSET', jobs_key, unpack(records, first, last))
    redis.call('ZADD', ready_key, unpack(members, first, last))
  end
  -- the due ids are scheduled's first members (ZRANGEBYSCORE from -inf, nothing added since):
  -- removed by rank in one walk, not looked up one by one (a ZREM of each is a skip-list
  -- search, a cache miss per level in a topic of millions)
  redis.call('ZREMRANGEBYRANK', scheduled_key, '0', promoted - 1)
  if times then next_due = earliest(scheduled_key) end
end
local leasing = ids and #ids or 0
if leasing < count then
  -- the members alone: ZPOPMIN would format each score as text (~3,000 instructions), more
  -- than the second call costs, even for one job
  local take = count - leasing
  local last = take == 1 and '0' or take - 1 -- as text when one (see earliest)
  local members = redis.call('ZRANGE', ready_key, '0', last)
  if #members > 0 then
    redis.call('ZREMRANGEBYRANK', ready_key, '0', #members == take and last or #members - 1)
  end
  if #members == 1 then -- one record: an HGET (an HMGET's reply is a table)
    local id = string.sub(members[1], 13)
    local job = {cmsgpack.unpack(redis.call('HGET', jobs_key, id))}
    leasing = leasing + 1
    if ids then ids[leasing], jobs[leasing] = id, job else only_id, only_job = id, job end
  elseif #members > 1 then
    if not ids then ids, jobs = {}, {} end
    for i = 1, #members do ids[leasing + i] = string.sub(members[i], 13) end
    for first = leasing + 1, #ids, SLICE do -- their records in one HMGET per SLICE ids
      local last_id = math.min(first + SLICE - 1, #ids)
      local raws = redis.call('HMGET', jobs_key, unpack(ids, first, last_id))
      for k = first, last_id do jobs[k] = {cmsgpack.unpack(raws[k - first + 1])} end
    end
    leasing = #ids
  end
end

-- Leased occurrences of schedules, and for each the length of the feed after its reserved
-- event (advance_schedule below puts the next occurrence's events there); made at the first.
local occurrences, feed_ends
if leasing > 0 then
  local leased = leasing == 1 and '1' or leasing -- as text when one (see earliest)
  local token = redis.call('HINCRBY', meta_key, 'seq', leased) - leasing
  -- one job's record and member go to HSET and ZADD at once; more in one command per kind
  -- and SLICE jobs, after the loop
  local records, members, deadlines
  if leasing > 1 then records, members, deadlines = {}, {}, {} end
  local errors = redis.call('HLEN', errors_key) > 0 -- else no job has a last error to read
  for i = 1, leasing do
    local id, job = only_id, only_job
    if ids then id, job = ids[i], jobs[i] end
    token = token + 1
    job[STATE], job[ATTEMPTS], job[SEQ] = RESERVED, job[ATTEMPTS] + 1, token
    local reserved_until = now + (ttr_override or job[TTR])
    -- add_event(id, job, 'reserved') of the other scripts, inline: its closure (and event_end's,
    -- which it then used), made and called on every call, cost Redis ~14,000 instructions (it
    -- is made below for a schedule's next occurrence only); keep this in step with add_event
    if history_on then
      local log = job[LOG] or '\0'
      local events = string.byte(log) -- (add_event's `count`: here the lease's count is another)
      if events >= MAX_EVENTS then -- the first event (put) stays, the second goes
        local second = 2 + EVENT_HEADER + struct.unpack('>H', log, 2 + EVENT_HEADER - 2)
        log = string.sub(log, 1, second - 1) .. string.sub(log,
          second + EVENT_HEADER + struct.unpack('>H', log, second + EVENT_HEADER - 2))
        events = events - 1
      end
      local event = struct.pack(EVENT_FORMAT, EVENT_RESERVED, now, job[VERSION], job[ATTEMPTS], 0)
      job[LOG] = string.char(events + 1) .. string.sub(log, 2) .. event
      if keep_events > 0 then -- the same bytes, then the job's id (feed.lua)
        local n = #feed
        feed[n + 1], feed[n + 2] = event, id
      end
    else
      job[LOG] = nil
    end
    local record = cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY)) -- encode, inline
    -- each distinct deadline as text once (most jobs of a call share one): redis.call would
    -- format the number again for every job. '%d' writes a whole number of ms the way
    -- '%.17g' does, for ~2,400 instructions less; '%.17g' for any other (a fraction, -0).
    local deadline = deadlines and deadlines[reserved_until]
    if not deadline then
      deadline = string.format(reserved_until > 0 and reserved_until < 1e17
        and reserved_until % 1 == 0 and '%d' or '%.17g', reserved_until)
      if deadlines then deadlines[reserved_until] = deadline end
    end
    if records then
      records[2 * i - 1], records[2 * i] = id, record
      members[2 * i - 1], members[2 * i] = deadline, id
    else
      redis.call('HSET', jobs_key, id, record)
      redis.call('ZADD', reserved_key, deadline, id)
    end
    if string.find(id, '@', 1, true) then
      if not occurrences then occurrences, feed_ends = {}, {} end
      local k = #occurrences + 1
      occurrences[k], feed_ends[k] = id, #feed
    end
    reply[#reply + 1] = {id, 'reserved', job[VERSION], job[ATTEMPTS], job[PRIORITY], job[TTR],
      job[MAX_ATTEMPTS], job[RUN_AT], string.format('%d', token), reserved_until,
      errors and redis.call('HGET', errors_key, id), job[BODY], 0}
  end
  -- A small sorted set is a listpack (zset-max-listpack-entries, 128), which finds a new
  -- member's place by a scan: a lease of many jobs into one cost Redis O(n) a job, a third of
  -- a Worker's round trip (its acks empty `reserved`, then its lease fills it again). A member
  -- longer than zset-max-listpack-value (64 bytes) makes it a skip list, which it stays while
  -- it holds members. Added here (NX: not a reserved job's id) and removed after the lease's
  -- members (unless one of them is that id), nobody sees it.
  local SKIP_LIST_LEASE = 16
  local SKIP_LIST_MEMBER = '\0redisched: a member longer than 64 bytes, zset-max-listpack-value'
  local added_member = leasing >= SKIP_LIST_LEASE
    and redis.call('OBJECT', 'ENCODING', reserved_key) ~= 'skiplist'
    and redis.call('ZADD', reserved_key, 'NX', '0', SKIP_LIST_MEMBER) == 1
  for first = 1, records and #records or 0, 2 * SLICE do
    local last = math.min(first + 2 * SLICE - 1, #records)
    redis.call('HSET', jobs_key, unpack(records, first, last))
    redis.call('ZADD', reserved_key, unpack(members, first, last))
  end
  if added_member then
    for i = 1, leasing do
      if ids[i] == SKIP_LIST_MEMBER then added_member = false end
    end
    if added_member then redis.call('ZREM', reserved_key, SKIP_LIST_MEMBER) end
  end
  redis.call('HINCRBY', meta_key, 'total_reserved', leased)
end
if not occurrences then
  if times then reply[2], reply[3] = next_due, earliest(reserved_key) end
  feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
  if leasing == 0 then
    -- a partitioned topic's name leases nothing (a job put before the mark aside): said, not a
    -- quiet empty lease; read only then (inline: a closure made on every call costs Redis
    -- ~400 instructions), so a lease of a job costs nothing more
    local partitions = redis.call('HGET', meta_key, 'partitions')
    if partitions then reply[4] = partitions + 0 end
  end
  return reply
end

-- Schedules: leasing a schedule's pending occurrence puts its next one, in this same step.
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
-- put_occurrence's helpers, made only here (the leasing loop above adds its events and packs
-- its records inline): a closure made on every call costs Redis ~400 instructions, and ~700
-- more for each local it names
local EVENT = {put = EVENT_PUT, reserved = EVENT_RESERVED}

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

local function encode(job)
  local BODY, LOG = 9, 10 -- the record's last fields, as locals (flush_feed says why)
  return cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY))
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

-- Defined only when an occurrence was leased (a closure made on every call costs Redis ~1 us);
-- each occurrence's events go into the feed right after its reserved event, as if advanced
-- in the loop above (advancing one schedule never touches a job leased in this call).
local leased_feed, from = feed, 1
local merged = {}
for k, id in ipairs(occurrences) do
  for i = from, feed_ends[k] do merged[#merged + 1] = leased_feed[i] end
  from = feed_ends[k] + 1
  feed = {}
  advance_schedule(id)
  for i = 1, #feed do merged[#merged + 1] = feed[i] end
end
for i = from, #leased_feed do merged[#merged + 1] = leased_feed[i] end
feed = merged
if times then reply[2], reply[3] = earliest(scheduled_key), earliest(reserved_key) end
feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
return reply
