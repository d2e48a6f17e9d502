-- feed: read a topic's events in order, after a cursor, or its latest ones.
-- KEYS[1] feed stream
-- ARGV[1] after_id string|empty
-- ARGV[2] after_index int|empty
-- ARGV[3] limit int
-- ARGV[4] latest int
-- Returns: up to limit events, oldest first, each [entry_id, index, id, kind, at_ms, version,
--   attempt, detail]: the feed entry (one per script call that changed jobs) and the event's
--   position in it form its cursor. Empty after_id starts at the oldest event kept; else
--   the events after (after_id, after_index) are returned, or after the whole entry after_id
--   when after_index is empty. latest 1 returns the limit most recent events instead. detail
--   is '' when there is none; kind is one of the event kinds of history.lua.
-- Complexity: O(log N + E) for E events read (limit plus the rest of the entries touched).
local feed_key = KEYS[1]
if #KEYS ~= 1 then return redis.error_reply('ERR feed: expected 1 key') end
local after_id, after_index, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local latest = ARGV[4] == '1'
if not limit or limit < 1 then return redis.error_reply('ERR feed: limit must be >= 1') end
if limit % 1 ~= 0 or limit > 10000 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR feed: limit must be an integer from 1 to 10000')
end
if ARGV[2] ~= '' and not (after_index and after_index % 1 == 0 and after_index >= 0) then
  return redis.error_reply('ERR feed: after_index must be an integer >= 0 or empty')
end
if not latest and ARGV[4] ~= '0' and ARGV[4] ~= '' then
  return redis.error_reply('ERR feed: latest must be 0 or 1')
end
-- An entry holds its events as pairs: the event as the job's log stores it (struct '>BdIIH'
-- kind, at_ms, version, attempt, detail length, then the detail: at least EVENT_HEADER
-- bytes) and the job's id. Entries written by earlier versions hold six one-letter fields per
-- event: j id k kind t at_ms v version a attempt d detail (their first field is 'j').
local EVENT_FORMAT, EVENT_HEADER, OLD_FIELDS_PER_EVENT = '>BdIIH', 19, 12
local EVENT_NAMES = {'put', 'replaced', 'reserved', 'released', 'requeued', 'retried',
  'touched', 'buried', 'dead', 'kicked', 'acked', 'deleted', 'pulled', 'expired', 'aborted'}

local function events_of(entry)
  local found, fields = {}, entry[2]
  if #fields[1] < EVENT_HEADER then
    for i = 1, #fields, OLD_FIELDS_PER_EVENT do
      found[#found + 1] = {entry[1], (i - 1) / OLD_FIELDS_PER_EVENT, fields[i + 1],
        fields[i + 3], tonumber(fields[i + 5]), tonumber(fields[i + 7]),
        tonumber(fields[i + 9]), fields[i + 11]}
    end
    return found
  end
  for i = 1, #fields, 2 do
    local kind, at, version, attempt, size, detail_at = struct.unpack(EVENT_FORMAT, fields[i])
    found[#found + 1] = {entry[1], (i - 1) / 2, fields[i + 1], EVENT_NAMES[kind], at, version,
      attempt, string.sub(fields[i], detail_at, detail_at + size - 1)}
  end
  return found
end

local reply = {}
if latest then
  local newest = {}
  for _, entry in ipairs(redis.call('XREVRANGE', feed_key, '+', '-', 'COUNT', limit)) do
    local found = events_of(entry)
    for i = #found, 1, -1 do
      if #newest < limit then newest[#newest + 1] = found[i] end
    end
    if #newest >= limit then break end
  end
  for i = #newest, 1, -1 do reply[#reply + 1] = newest[i] end
  return reply
end

local start = '-'
if after_id ~= '' then start = after_index and after_id or '(' .. after_id end
for _, entry in ipairs(redis.call('XRANGE', feed_key, start, '+', 'COUNT', limit + 1)) do
  for _, event in ipairs(events_of(entry)) do
    if not (after_index and event[1] == after_id and event[2] <= after_index) then
      reply[#reply + 1] = event
      if #reply >= limit then return reply end
    end
  end
end
return reply
