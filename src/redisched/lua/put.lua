-- put: create jobs by id, or replace them; every job of one call shares the options.
-- KEYS[1] jobs hash
-- KEYS[2] scheduled zset
-- KEYS[3] ready zset
-- KEYS[4] dead zset
-- KEYS[5] pending hash
-- KEYS[6] errors hash
-- KEYS[7] meta hash
-- KEYS[8] wake channel
-- KEYS[9] feed stream
-- KEYS[10] history hash
-- ARGV[1] now_ms int|empty
-- ARGV[2] run_at_ms int|empty
-- ARGV[3] delay_ms int|empty
-- ARGV[4] ttr_ms int|empty
-- ARGV[5] priority int|empty
-- ARGV[6] max_attempts int|empty
-- ARGV[7] replace int|empty
-- ARGV[8] if_version int|empty
-- ARGV[9] id string...
-- ARGV[10] body bytes...
-- Returns: a flat array [status, version] per job, in order. status: 1 created, 2 exists
--   (nothing changed, version is the current one), 3 replaced, 4 pending (the job is reserved:
--   the new version waits until the running attempt ends; its holder is told to stop with
--   c<token>:<id> on the wake channel), 5 version conflict (if_version
--   did not match the current version; 0 when the job does not exist), 6 partitioned (the
--   topic is spread over partitions, meta field partitions, and does not hold every id of the
--   call: a new job goes into its id's partition; version is the partition count; nothing
--   changed, every job of the call gets it). ARGV[9..10] repeat per job.
--   replace: 1 replaces an existing job, 0 or empty does not (other values are refused); 2
--   (create-only) or 3 (replace) also append the job as stored, as get.lua returns it (one
--   job per call only), or false when nothing was stored (exists, version conflict, pending:
--   read it with get). Numbers are whole: now_ms, run_at_ms, delay_ms >= 0, ttr_ms >= 1,
--   max_attempts >= 0, if_version >= 1, priority from -2^31 to 2^31 - 1.
--   Empty run_at_ms means now + delay_ms; empty ttr_ms / max_attempts take the topic's
--   defaults (meta fields ttr, max_attempts), else 60000 ms / 25 attempts (a job then goes
--   dead after its 25th failed attempt, like Sidekiq's 25 retries). A created job gets a put
--   event, a replaced one a replaced event. An id that finished (history hash, read with
--   history off too: records kept from before it was turned off) is created at the larger of
--   its finished version and meta version_floor, + 1, or answers 2 exists (with that version) to a create-only put
--   within the topic's dedup_window_ms of finishing; an id with no finished record at meta
--   version_floor + 1 (the highest version of a finished record trimmed away, else 0).
-- Complexity: O(N log M) for N jobs in a topic of M jobs.
local jobs_key, scheduled_key, ready_key, dead_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local pending_key, errors_key, meta_key, wake_channel = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local feed_key, history_key = KEYS[9], KEYS[10]
if #KEYS ~= 10 then return redis.error_reply('ERR put: expected 10 keys') end
-- The record: a MessagePack stream of these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local CREATED, EXISTS, REPLACED, PENDING, VERSION_CONFLICT, PARTITIONED = 1, 2, 3, 4, 5, 6
local CANCEL = 'c' -- a wake message naming a reservation to cancel: CANCEL .. token .. ':' .. id
local DEFAULT_TTR_MS, DEFAULT_MAX_ATTEMPTS = 60000, 25

-- An empty argument (or a false from HMGET) is tested before tonumber, and the usual '0' is
-- matched as text: a tonumber call costs Redis ~400 instructions, a comparison of interned
-- strings next to nothing. TIME's texts convert as arithmetic does, without the call. An
-- argument read more than once is read into a local (ARGV is a global: two table reads).
-- A number that was parsed is checked on that path only: nil (not a number) is refused, never
-- taken for the default, and n % 1 == 0 (Lua 5.1: n - floor(n) * 1) refuses NaN, +-inf and
-- fractions in one comparison.
local argc = #ARGV
local jobs_in_call = (argc - 8) / 2
local now = ARGV[1] ~= '' and tonumber(ARGV[1])
local clock -- TIME's reply when now is the server's clock (flush_feed: a new feed's epoch)
if not now then
  if now == nil then return redis.error_reply('ERR put: now_ms must be an integer >= 0') end
  clock = redis.call('TIME')
  now = clock[1] * 1000 + math.floor(clock[2] / 1000)
elseif now % 1 ~= 0 or now < 0 then
  return redis.error_reply('ERR put: now_ms must be an integer >= 0')
end
local DEFAULT_DELAY, DEFAULT_PRIORITY = 0, 0
local delay_arg, priority_arg = ARGV[3], ARGV[5]
local delay = (delay_arg == '' or delay_arg == '0') and DEFAULT_DELAY or tonumber(delay_arg)
local run_at = ARGV[2] ~= '' and tonumber(ARGV[2])
if run_at == nil or run_at and (run_at % 1 ~= 0 or run_at < 0) then
  return redis.error_reply('ERR put: run_at_ms must be an integer >= 0 or empty')
end
run_at = run_at or (delay and now + delay)
local priority = (priority_arg == '' or priority_arg == '0') and DEFAULT_PRIORITY
  or tonumber(priority_arg)
local mode = ARGV[7] -- 1 replace, 2 create-only and read back, 3 replace and read back
local replace, read_back = mode == '1' or mode == '3', mode == '2' or mode == '3'
local if_version = ARGV[8] ~= '' and tonumber(ARGV[8])
if not run_at or not priority or argc < 10 or argc % 2 ~= 0
  or (read_back and argc > 10) then
  return redis.error_reply('ERR put: bad arguments (run_at/delay, priority, id/body pairs)')
end
if delay ~= DEFAULT_DELAY and not (delay and delay % 1 == 0 and delay >= 0) then
  return redis.error_reply('ERR put: delay_ms must be an integer >= 0 or empty')
end
if priority ~= DEFAULT_PRIORITY
  and not (priority % 1 == 0 and priority >= -2147483648 and priority <= 2147483647) then
  return redis.error_reply('ERR put: priority must be an integer from -2^31 to 2^31 - 1')
end
if not replace and not read_back and mode ~= '0' and mode ~= '' then
  return redis.error_reply('ERR put: replace must be 0, 1, 2, 3 or empty')
end
if if_version == nil or if_version and (if_version % 1 ~= 0 or if_version < 1) then
  return redis.error_reply('ERR put: if_version must be an integer >= 1 or empty')
end
-- History (lua/README.md, "History"): an event goes into the job's record, job[LOG] (a string:
-- a count byte, then per event struct '>BdIIH' kind, at_ms, version, attempt, detail length,
-- then the detail; the first event and the last MAX_EVENTS - 1 are kept), and into the topic's
-- feed (flush_feed: one stream entry per call, holding the call's events).
local LOG = 10
-- only the kinds this script records, as locals (a table of all 14 costs Redis ~5,000
-- instructions a call, even a table of these two ~1,200)
local EVENT_PUT, EVENT_REPLACED = 1, 2
local EVENT_FORMAT, EVENT_HEADER, MAX_EVENTS, MAX_DETAIL = '>BdIIH', 19, 16, 200
-- only the fields this script reads: each costs Redis ~0.2 us (a scan of meta; an absent
-- field, the usual case of a setting, scans all of it). dedup_window_ms is read only by a put
-- of a finished id (below): every other put saves ~2,000 instructions
local settings = redis.call('HMGET', meta_key, 'history', 'keep_events', 'feed_epoch', 'ttr',
  'max_attempts', 'paused', 'partitions', 'version_floor')
-- A partitioned topic (partition_setting.py) takes no new job of its own; one it holds (put
-- before the mark) may be replaced where it is.
if settings[7] then
  for i = 9, argc, 2 do
    if redis.call('HEXISTS', jobs_key, ARGV[i]) == 0 then
      local refused, count = {}, settings[7] + 0
      for k = 1, jobs_in_call do refused[k + k - 1], refused[k + k] = PARTITIONED, count end
      if read_back then refused[3] = false end
      return refused
    end
  end
end
local history_on = settings[1] ~= '0'
local keep_events = settings[2] and tonumber(settings[2]) or 10000
local feed_epoch = settings[3] -- false until the feed's first entry (flush_feed)
local ttr = ARGV[4] ~= '' and tonumber(ARGV[4])
if ttr == nil or ttr and (ttr % 1 ~= 0 or ttr < 1) then
  return redis.error_reply('ERR put: ttr_ms must be an integer >= 1 or empty')
end
ttr = ttr or settings[4] and tonumber(settings[4]) or DEFAULT_TTR_MS
local max_attempts = ARGV[6] ~= '' and tonumber(ARGV[6])
if max_attempts == nil or max_attempts and (max_attempts % 1 ~= 0 or max_attempts < 0) then
  return redis.error_reply('ERR put: max_attempts must be an integer >= 0 or empty')
end
max_attempts = max_attempts or settings[5] and tonumber(settings[5]) or DEFAULT_MAX_ATTEMPTS
local paused = settings[6] == '1'
-- the highest version of a finished record trimmed away (ack.lua's trim): a new life of an
-- id without a finished record starts above it, so its versions never repeat
local version_floor = settings[8] and tonumber(settings[8]) or 0
local dedup_window -- meta dedup_window_ms, or 0: read when first needed
-- sized for a put of one job, whose event is added with no resize (a nil in a constructor
-- sizes the array for one more value; # counts only the values before it)
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

-- The finished record's leading fields (see ack.lua): enough to continue its versions.
local FINISHED_AT, F_VERSION = 2, 3

-- All jobs of one call share run_at: either all become ready or all are scheduled. Workers
-- need a wake-up when ready was empty, or when the new run_at is the earliest.
local due_now, placed = run_at <= now, false
local ready_before, head_before, seq_taken
if due_now then
  ready_before = redis.call('ZCARD', ready_key)
  -- one sequence number per job of the call, taken at once (unused ones leave harmless gaps)
  seq_taken = redis.call('HINCRBY', meta_key, 'seq', jobs_in_call == 1 and '1' or jobs_in_call)
    - jobs_in_call
else
  head_before = redis.call('ZRANGE', scheduled_key, 0, 0, 'WITHSCORES')[2]
  head_before = head_before and head_before + 0 -- the score as a number, without tonumber
end

-- A call of many jobs (batched) reads their records and finished records in one HMGET each,
-- and writes the jobs it stores after the loop, one HSET and one ZADD for all (SLICE jobs per
-- command), unless an id comes twice in the call: its second put must see the first.
local SLICE = 1000
local batched = argc > 10
local raws, histories, records, members
-- every job's ZADD score, as text once: redis.call would write the number as '%.17g' for each
-- job. The usual priority 0 is the literal '0', the text '%.17g' gives (a one-job put: ~2,500
-- instructions less; matching other texts with a pattern costs what the format does)
local score = due_now and (priority_arg == '0' or priority_arg == '') and '0'
  or string.format('%.17g', due_now and priority or run_at)
if batched then
  local ids, seen, argv = {}, {}, ARGV
  for i = 9, #argv, 2 do
    local id = argv[i]
    if seen[id] then batched = false end
    ids[(i - 7) / 2], seen[id] = id, true
  end
  raws, histories, records, members = {}, {}, {}, {}
  for first = 1, batched and #ids or 0, SLICE do
    local last = math.min(first + SLICE - 1, #ids)
    local got = redis.call('HMGET', jobs_key, unpack(ids, first, last))
    local old = redis.call('HMGET', history_key, unpack(ids, first, last)) -- history on or off
    if first == 1 and last == #ids then -- one slice: its replies as they are
      raws, histories = got, old
    else
      for k = first, last do
        raws[k], histories[k] = got[k - first + 1], old[k - first + 1]
      end
    end
  end
end

-- The loop stores each created or replaced job afresh (scheduled or ready by its run_at) with
-- the events of `log` and then `kind`. It is written inline, not as local functions: a closure
-- made on every call costs Redis ~0.5-1.5 us, used or not.
-- [status, version] per job: sized at once for a call of one job (growing an empty table
-- costs Redis a resize per element)
local reply = argc == 10 and {0, 0} or {}
local stored_version -- the version of the last job stored (read_back: the one job)
local counted = 0 -- jobs put: created, replaced or pending (meta total_put; a refused one not)
local put_version, put_event, put_head, put_tail -- a created job's parts, for one version
-- scheduled: SEQ holds run_at - the put's time (history on; see materialize), else 0
local put_seq = not due_now and (history_on and run_at - now or 0)
local put_seq_code = batched and put_seq and cmsgpack.pack(put_seq)
local body_heads = batched and {} -- a body's MessagePack header (cmsgpack's bytes), by length
-- A ready job's member starts with '%012x' of its SEQ, and its record holds SEQ's MessagePack
-- code: for a call of many jobs, both are parts fixed for the 256 SEQs of a block (seq_block:
-- the first; seq_high: '%010x' of SEQ / 256; seq_lead: the code but its last byte, from 256
-- on) then the low byte's, from tables (a string.format and a cmsgpack.pack per job cost
-- Redis more than its share of these; a call of one job makes them for nothing)
local seq_block, seq_high, seq_lead
local many_ready = batched and due_now
local hex_byte = many_ready and {'00', '01', '02', '03', '04', '05', '06', '07', '08', '09', '0a',
  '0b', '0c', '0d', '0e', '0f', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '1a',
  '1b', '1c', '1d', '1e', '1f', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '2a',
  '2b', '2c', '2d', '2e', '2f', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '3a',
  '3b', '3c', '3d', '3e', '3f', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '4a',
  '4b', '4c', '4d', '4e', '4f', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '5a',
  '5b', '5c', '5d', '5e', '5f', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '6a',
  '6b', '6c', '6d', '6e', '6f', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '7a',
  '7b', '7c', '7d', '7e', '7f', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '8a',
  '8b', '8c', '8d', '8e', '8f', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99', '9a',
  '9b', '9c', '9d', '9e', '9f', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8', 'a9', 'aa',
  'ab', 'ac', 'ad', 'ae', 'af', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9', 'ba',
  'bb', 'bc', 'bd', 'be', 'bf', 'c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6', 'c7', 'c8', 'c9', 'ca',
  'cb', 'cc', 'cd', 'ce', 'cf', 'd0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7', 'd8', 'd9', 'da',
  'db', 'dc', 'dd', 'de', 'df', 'e0', 'e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e7', 'e8', 'e9', 'ea',
  'eb', 'ec', 'ed', 'ee', 'ef', 'f0', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f7', 'f8', 'f9', 'fa',
  'fb', 'fc', 'fd', 'fe', 'ff'}
local byte_char = many_ready and {'\0', '\1', '\2', '\3', '\4', '\5', '\6', '\7', '\8', '\9',
  '\10', '\11', '\12', '\13', '\14', '\15', '\16', '\17', '\18', '\19', '\20', '\21', '\22', '\23',
  '\24', '\25', '\26', '\27', '\28', '\29', '\30', '\31', '\32', '\33', '\34', '\35', '\36', '\37',
  '\38', '\39', '\40', '\41', '\42', '\43', '\44', '\45', '\46', '\47', '\48', '\49', '\50', '\51',
  '\52', '\53', '\54', '\55', '\56', '\57', '\58', '\59', '\60', '\61', '\62', '\63', '\64', '\65',
  '\66', '\67', '\68', '\69', '\70', '\71', '\72', '\73', '\74', '\75', '\76', '\77', '\78', '\79',
  '\80', '\81', '\82', '\83', '\84', '\85', '\86', '\87', '\88', '\89', '\90', '\91', '\92', '\93',
  '\94', '\95', '\96', '\97', '\98', '\99', '\100', '\101', '\102', '\103', '\104', '\105', '\106',
  '\107', '\108', '\109', '\110', '\111', '\112', '\113', '\114', '\115', '\116', '\117', '\118',
  '\119', '\120', '\121', '\122', '\123', '\124', '\125', '\126', '\127', '\128', '\129', '\130',
  '\131', '\132', '\133', '\134', '\135', '\136', '\137', '\138', '\139', '\140', '\141', '\142',
  '\143', '\144', '\145', '\146', '\147', '\148', '\149', '\150', '\151', '\152', '\153', '\154',
  '\155', '\156', '\157', '\158', '\159', '\160', '\161', '\162', '\163', '\164', '\165', '\166',
  '\167', '\168', '\169', '\170', '\171', '\172', '\173', '\174', '\175', '\176', '\177', '\178',
  '\179', '\180', '\181', '\182', '\183', '\184', '\185', '\186', '\187', '\188', '\189', '\190',
  '\191', '\192', '\193', '\194', '\195', '\196', '\197', '\198', '\199', '\200', '\201', '\202',
  '\203', '\204', '\205', '\206', '\207', '\208', '\209', '\210', '\211', '\212', '\213', '\214',
  '\215', '\216', '\217', '\218', '\219', '\220', '\221', '\222', '\223', '\224', '\225', '\226',
  '\227', '\228', '\229', '\230', '\231', '\232', '\233', '\234', '\235', '\236', '\237', '\238',
  '\239', '\240', '\241', '\242', '\243', '\244', '\245', '\246', '\247', '\248', '\249', '\250',
  '\251', '\252', '\253', '\254', '\255'}
for i = 9, #ARGV, 2 do
  local id, body, k = ARGV[i], ARGV[i + 1], (i - 7) / 2
  local raw
  if batched then raw = raws[k] else raw = redis.call('HGET', jobs_key, id) end
  -- kind: the job is stored afresh, with this event; log: its old log; logged: with the event
  local status, version, kind, log, logged
  if not raw then
    local ended = batched and histories[k]
    -- read with history off too: a record kept from before it was turned off holds versions
    if not batched then ended = redis.call('HGET', history_key, id) end
    local finished_at, finished_version = nil, version_floor
    if ended then -- unpack_limit's first value is the offset read, then the fields
      local before = {cmsgpack.unpack_limit(ended, F_VERSION)}
      finished_at, finished_version = before[1 + FINISHED_AT], before[1 + F_VERSION]
    end
    if ended and not replace and not if_version and not dedup_window then
      dedup_window = tonumber(redis.call('HGET', meta_key, 'dedup_window_ms')) or 0
    end
    if if_version then
      status, version = VERSION_CONFLICT, 0
    elseif ended and not replace and finished_at > now - dedup_window then
      status, version = EXISTS, finished_version
    else
      -- a record kept from before history was turned off may be below the floor
      status, version, kind = CREATED, math.max(finished_version, version_floor) + 1, 'put'
    end
  else
    -- decode() and materialize() of the other scripts, inline: only a put of an existing id
    -- decodes a record (a closure made on every call costs Redis ~0.5-1 us, used or not). A
    -- scheduled job unchanged since its put keeps no log: its SEQ holds run_at - the put's
    -- time (ms); it becomes a log with the put event.
    local job = {cmsgpack.unpack(raw)}
    if history_on and not job[LOG] and job[STATE] == SCHEDULED and job[SEQ] ~= 0 then
      job[LOG] = '\1' .. struct.pack(EVENT_FORMAT, EVENT_PUT, job[RUN_AT] - job[SEQ],
        job[VERSION], 0, 0)
      job[SEQ] = 0
    end
    local current = job[VERSION]
    local pending = redis.call('HGET', pending_key, id)
    if pending then current = ({cmsgpack.unpack(pending)})[VERSION] end -- never materialized
    if if_version and if_version ~= current then
      status, version = VERSION_CONFLICT, current
    elseif not replace then
      status, version = EXISTS, current
    elseif job[STATE] == RESERVED then
      status, version, counted = PENDING, current + 1, counted + 1
      -- the record's fields STATE .. BODY, packed as encode() of the other scripts packs them
      redis.call('HSET', pending_key, id, cmsgpack.pack(SCHEDULED, version, 0, priority, ttr,
        max_attempts, run_at, 0, body))
    else
      status, version, kind, log = REPLACED, current + 1, 'replaced', job[LOG]
      if job[STATE] == SCHEDULED then
        redis.call('ZREM', scheduled_key, id)
      elseif job[STATE] == READY then
        redis.call('ZREM', ready_key, string.format('%012x', job[SEQ]) .. id)
      else
        redis.call('ZREM', dead_key, id)
      end
      redis.call('HDEL', errors_key, id)
    end
    if status == PENDING or kind then
      -- add_event() of the other scripts, inline, for its one use here:
      -- the replaced event goes into the running job's record (pending: detail, the job's
      -- version and attempt) or into the new record (version, attempt 0, the old log).
      -- `logged` is the log with it (nil with history off), `log` stays the old one.
      if history_on then
        local detail = kind and '' or string.sub('version ' .. version
          .. ' waits for the running attempt; cancel sent', 1, MAX_DETAIL)
        local old = job[LOG] or '\0'
        local count = string.byte(old)
        if count >= MAX_EVENTS then -- the first event (put) stays, the second goes
          local second = 2 + EVENT_HEADER + struct.unpack('>H', old, 2 + EVENT_HEADER - 2)
          old = string.sub(old, 1, second - 1) .. string.sub(old,
            second + EVENT_HEADER + struct.unpack('>H', old, second + EVENT_HEADER - 2))
          count = count - 1
        end
        local event = struct.pack(EVENT_FORMAT, EVENT_REPLACED, now,
          kind and version or job[VERSION], kind and 0 or job[ATTEMPTS], #detail) .. detail
        logged = string.char(count + 1) .. string.sub(old, 2) .. event
        if keep_events > 0 then -- the same bytes, then the job's id (feed.lua)
          local n = #feed
          feed[n + 1], feed[n + 2] = event, id
        end
      end
      if not kind then -- pending: the running job's record, as encode() packs it
        job[LOG] = logged
        redis.call('HSET', jobs_key, id, cmsgpack.pack(unpack(job, 1, logged and LOG or BODY)))
        redis.call('PUBLISH', wake_channel, CANCEL .. string.format('%d', job[SEQ]) .. ':' .. id)
      end
    end
  end
  local record, member -- a job stored afresh: its record and its member of ready/scheduled
  if kind == 'put' then
    -- a created job: a fresh record with only the put event (or, scheduled, the put event
    -- implied). In a call of many jobs, its MessagePack stream is the call's head (STATE ..
    -- RUN_AT), then SEQ and BODY, then the call's tail (LOG): head and tail, and the event,
    -- are the same for every job of one version, so they are packed once (cmsgpack.pack of
    -- several values is their encodings concatenated); a job alone is packed at once.
    if version ~= put_version then
      put_version = version
      put_event = struct.pack(EVENT_FORMAT, EVENT_PUT, now, version, 0, 0)
      if batched then
        put_head = cmsgpack.pack(due_now and READY or SCHEDULED, version, 0, priority, ttr,
          max_attempts, run_at)
        put_tail = history_on and due_now and cmsgpack.pack('\1' .. put_event) or ''
      end
    end
    local seq_code, seq_low = put_seq_code, '' -- SEQ's code: seq_code .. seq_low
    member = id
    if not batched then
      local seq = put_seq
      if due_now then
        seq_taken = seq_taken + 1
        seq, member = seq_taken, string.format('%012x', seq_taken) .. id
      end
      if history_on and due_now then
        -- LOG appended as its MessagePack code: '\180' heads a string of 20 bytes (0xa0 + 20),
        -- the log of one event (no detail), as cmsgpack.pack writes it (one string less)
        record = cmsgpack.pack(READY, version, 0, priority, ttr, max_attempts, run_at, seq, body)
          .. '\180\1' .. put_event
      else
        record = cmsgpack.pack(due_now and READY or SCHEDULED, version, 0, priority, ttr,
          max_attempts, run_at, seq, body)
      end
    elseif due_now then -- many jobs, ready (many_ready)
      seq_taken = seq_taken + 1
      local low = seq_taken % 256
      if seq_taken - low ~= seq_block then -- (a replaced job may have taken the SEQs between)
        seq_block = seq_taken - low
        seq_high = string.format('%010x', seq_block / 256)
        seq_lead = seq_taken >= 256 and string.sub(cmsgpack.pack(seq_taken), 1, -2)
      end
      member = seq_high .. hex_byte[low + 1] .. id
      if seq_lead then
        seq_code, seq_low = seq_lead, byte_char[low + 1]
      else
        seq_code = cmsgpack.pack(seq_taken)
      end
    end
    if batched then
      local size = #body
      local body_head = body_heads[size]
      if not body_head then
        body_head = string.sub(cmsgpack.pack(body), 1, -size - 1)
        body_heads[size] = body_head
      end
      record = put_head .. seq_code .. seq_low .. body_head .. body .. put_tail
    end
    if history_on and keep_events > 0 then -- the same bytes, then the job's id (feed.lua)
      local n = #feed
      feed[n + 1], feed[n + 2] = put_event, id
    end
  elseif kind then
    -- the fields in record order, STATE .. LOG: a list constructor costs Redis less than
    -- [STATE] = ... (an array, not a hash), ~0.5 us per job
    local job = {SCHEDULED, version, 0, priority, ttr, max_attempts, run_at, 0, body, logged}
    member = id
    if due_now then
      seq_taken = seq_taken + 1
      job[STATE], job[SEQ] = READY, seq_taken
      member = string.format('%012x', seq_taken) .. id
    end
    if history_on and not log and not due_now then
      job[LOG], job[SEQ] = nil, run_at - now -- the put event, implied (see materialize)
    end
    record = cmsgpack.pack(unpack(job, 1, job[LOG] and LOG or BODY)) -- as encode() packs
  end
  if record then
    placed, stored_version, counted = true, version, counted + 1
    if batched then
      local n = #records
      records[n + 1], records[n + 2] = id, record
      members[n + 1], members[n + 2] = score, member
    else
      redis.call('ZADD', due_now and ready_key or scheduled_key, score, member)
      redis.call('HSET', jobs_key, id, record)
    end
  end
  reply[k + k - 1], reply[k + k] = status, version
end
for first = 1, batched and #records or 0, 2 * SLICE do
  local last = math.min(first + 2 * SLICE - 1, #records)
  redis.call('ZADD', due_now and ready_key or scheduled_key, unpack(members, first, last))
  redis.call('HSET', jobs_key, unpack(records, first, last))
end

-- a count of one as text: redis.call writes a number as '%.17g' (~2,200 instructions)
if counted > 0 then
  redis.call('HINCRBY', meta_key, 'total_put', counted == 1 and '1' or counted)
end
if placed and not paused then
  if due_now and ready_before == 0 then
    redis.call('PUBLISH', wake_channel, '0')
  elseif not due_now and (not head_before or run_at < head_before) then
    redis.call('PUBLISH', wake_channel, tostring(run_at))
  end
end
feed_epoch = flush_feed(feed, feed_epoch, meta_key, feed_key, keep_events, clock, now)
if read_back then -- a fresh record: never reserved, no error (a replace cleared it), no pending
  reply[3] = stored_version and {ARGV[9], due_now and 'ready' or 'scheduled', stored_version, 0,
    priority, ttr, max_attempts, run_at, false, false, false, ARGV[10], 0} or false
end
return reply
