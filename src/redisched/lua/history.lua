-- history: read what happened to a job, live or finished, in one lookup.
-- KEYS[1] jobs hash
-- KEYS[2] pending hash
-- KEYS[3] errors hash
-- KEYS[4] history hash
-- ARGV[1] id string
-- Returns: nil when the id was never seen (or its history aged out), else [outcome,
--   finished_at_ms, version, attempts, result, last_error, event...]. For a live job outcome is
--   '' and finished_at_ms -1, result nil; for a finished one outcome is done|cancelled|dead|
--   pulled|aborted and result the bytes kept by ack (nil when none). last_error is nil or text. Each
--   event is [kind, at_ms, version, attempt, detail], oldest first; kind is one of put,
--   replaced, reserved, released, requeued, retried, touched, buried, dead, kicked, acked,
--   deleted, pulled, expired, aborted; detail is nil or text. A live job's history is the live one even
--   when an earlier life of the id finished.
-- Complexity: O(E) for E events of the job (at most 16).
local jobs_key, pending_key, errors_key, history_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if #KEYS ~= 4 then return redis.error_reply('ERR history: expected 4 keys') end
local id = ARGV[1]

-- The record (see put.lua) and the finished record (see ack.lua): these fields, in this order.
local STATE, VERSION, ATTEMPTS, PRIORITY, TTR, MAX_ATTEMPTS, RUN_AT, SEQ, BODY =
  1, 2, 3, 4, 5, 6, 7, 8, 9
local LOG = 10
local OUTCOME, FINISHED_AT, F_VERSION, F_ATTEMPTS, RESULT, LAST_ERROR, EVENTS =
  1, 2, 3, 4, 5, 6, 7
local SCHEDULED, READY, RESERVED, DEAD = 1, 2, 3, 4
local function decode(raw) return {cmsgpack.unpack(raw)} end
local EVENT_FORMAT = '>BdIIH'
local EVENT_NAMES = {'put', 'replaced', 'reserved', 'released', 'requeued', 'retried',
  'touched', 'buried', 'dead', 'kicked', 'acked', 'deleted', 'pulled', 'expired', 'aborted'}
local OUTCOME_NAMES = {'done', 'cancelled', 'dead', 'pulled', 'aborted'}


-- Appends the events of a log string (see ack.lua) to reply.
local function with_events(reply, log)
  local at = 2
  while log and at <= #log do
    local kind, when, version, attempt, size, detail_at = struct.unpack(EVENT_FORMAT, log, at)
    local detail = size > 0 and string.sub(log, detail_at, detail_at + size - 1) or false
    reply[#reply + 1] = {EVENT_NAMES[kind], when, version, attempt, detail}
    at = detail_at + size
  end
  return reply
end

local raw = redis.call('HGET', jobs_key, id)
if raw then
  local job = decode(raw)
  if not job[LOG] and job[STATE] == SCHEDULED and job[SEQ] > 0 then -- see put.lua
    job[LOG] = '\1' .. struct.pack(EVENT_FORMAT, 1, job[RUN_AT] - job[SEQ], job[VERSION], 0, 0)
  end
  local pending = redis.call('HGET', pending_key, id)
  if pending then job[VERSION] = decode(pending)[VERSION] end
  return with_events({'', -1, job[VERSION], job[ATTEMPTS], false,
    redis.call('HGET', errors_key, id)}, job[LOG])
end
local finished = redis.call('HGET', history_key, id)
if not finished then return nil end
local record = decode(finished)
return with_events({OUTCOME_NAMES[record[OUTCOME]], record[FINISHED_AT], record[F_VERSION],
  record[F_ATTEMPTS], record[RESULT], record[LAST_ERROR]}, record[EVENTS])
