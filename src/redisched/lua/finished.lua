-- finished: one page of a topic's finished jobs, most recent first, optionally of one outcome.
-- KEYS[1] finished zset
-- KEYS[2] history hash
-- ARGV[1] offset int
-- ARGV[2] limit int
-- ARGV[3] outcome string|empty
-- Returns: [next_offset, job...]: next_offset is 0 at the end, else the offset of the next
--   page. Each job is [id, outcome, finished_at_ms, version, attempts, result, last_error]
--   (history.lua without events). With an outcome (done|cancelled|dead|pulled) only those are
--   returned; a page then looks at up to 10 * limit finished jobs, so it may hold fewer than
--   limit jobs and still not be the last.
-- Complexity: O(log N + S) for S finished jobs looked at (S <= 10 * limit).
local finished_key, history_key = KEYS[1], KEYS[2]
local offset, limit, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
-- The finished record (see ack.lua): these fields, in this order.
local OUTCOME, FINISHED_AT, F_VERSION, F_ATTEMPTS, RESULT, LAST_ERROR, EVENTS =
  1, 2, 3, 4, 5, 6, 7
local OUTCOME_NAMES = {'done', 'cancelled', 'dead', 'pulled'}
if not offset or offset < 0 or not limit or limit < 1 then
  return redis.error_reply('ERR finished: offset must be >= 0 and limit >= 1')
end
if wanted ~= '' and not ({done = 1, cancelled = 1, dead = 1, pulled = 1})[wanted] then
  return redis.error_reply('ERR finished: outcome must be done, cancelled, dead or pulled')
end

local span = limit
if wanted ~= '' then span = limit * 10 end
local ids = redis.call('ZREVRANGE', finished_key, offset, offset + span - 1)
local reply, looked = {0}, 0
for _, id in ipairs(ids) do
  looked = looked + 1
  local raw = redis.call('HGET', history_key, id)
  if raw then
    local record = {cmsgpack.unpack(raw)}
    local outcome = OUTCOME_NAMES[record[OUTCOME]]
    if wanted == '' or outcome == wanted then
      reply[#reply + 1] = {id, outcome, record[FINISHED_AT], record[F_VERSION],
        record[F_ATTEMPTS], record[RESULT], record[LAST_ERROR]}
      if #reply - 1 >= limit then break end
    end
  end
end
if #ids == span or looked < #ids then reply[1] = offset + looked end
return reply
