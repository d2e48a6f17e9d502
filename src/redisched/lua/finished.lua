-- finished: one page of a topic's finished jobs, most recent first, optionally of one outcome.
-- KEYS[1] finished zset
-- KEYS[2] history hash
-- ARGV[1] after_score string|empty
-- ARGV[2] after_member string|empty
-- ARGV[3] limit int
-- ARGV[4] outcome string|empty
-- Returns: [after, job...]: after is nil at the end, else [score, member] of the last finished
--   job the call looked at: pass them back as after_score and after_member for the next page
--   (both empty: from the most recent). The page goes on right after that job in (finished
--   time, id) order, whether it is still there or not, so jobs finishing (or trimmed) while
--   paging shift nothing. Each job is [id, outcome, finished_at_ms, version, attempts, result,
--   last_error] (history.lua without events). With an outcome (done|cancelled|dead|pulled|aborted)
--   only those are returned; a page then looks at up to 10 * limit finished jobs, so it may
--   hold fewer than limit jobs and still have an after.
-- Complexity: O(log N + S) for S finished jobs looked at (S <= 10 * limit); O(log^2 N) more
--   when the after job is gone (a binary search among the jobs of its finished time).
local finished_key, history_key = KEYS[1], KEYS[2]
if #KEYS ~= 2 then return redis.error_reply('ERR finished: expected 2 keys') end
local after_score, after_member = ARGV[1], ARGV[2]
local limit, wanted = tonumber(ARGV[3]), ARGV[4]
-- The finished record (see ack.lua): these fields, in this order.
local OUTCOME, FINISHED_AT, F_VERSION, F_ATTEMPTS, RESULT, LAST_ERROR, EVENTS =
  1, 2, 3, 4, 5, 6, 7
local OUTCOME_NAMES = {'done', 'cancelled', 'dead', 'pulled', 'aborted'}
-- True when member a comes before b at equal scores: Redis orders them bytewise (memcmp, then
-- the shorter first), while Lua's < on strings follows the server's locale.
local function member_before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- The rank (ZREVRANGE's when reverse) of the first member after (score, member) in key's order,
-- whether that member is still there or not: ZRANK when it still holds that score, else a
-- binary search among the members of that score. O(log N), O(log^2 N) for a member gone.
local function resume_rank(key, score, member, reverse)
  local before, here = nil, 0
  if tonumber(redis.call('ZSCORE', key, member)) == tonumber(score) then
    before, here = redis.call('ZRANK', key, member), 1
  else
    local low = redis.call('ZCOUNT', key, '-inf', '(' .. score)
    local high = redis.call('ZCOUNT', key, '-inf', score)
    while low < high do
      local middle = math.floor((low + high) / 2)
      if member_before(redis.call('ZRANGE', key, middle, middle)[1], member) then
        low = middle + 1
      else
        high = middle
      end
    end
    before = low
  end
  if reverse then return redis.call('ZCARD', key) - before end
  return before + here
end
if not limit or limit < 1 then
  return redis.error_reply('ERR finished: limit must be >= 1')
end
if limit % 1 ~= 0 or limit > 10000 then -- NaN, +-inf and fractions fail n % 1 == 0
  return redis.error_reply('ERR finished: limit must be an integer from 1 to 10000')
end
local resuming = after_score ~= '' or after_member ~= ''
local score = tonumber(after_score)
if resuming and (not score or score ~= score or after_member == '') then -- NaN ~= NaN
  return redis.error_reply('ERR finished: after_score must be a number and after_member not empty')
end
if wanted ~= '' and not ({done = 1, cancelled = 1, dead = 1, pulled = 1, aborted = 1})[wanted] then
  return redis.error_reply('ERR finished: outcome must be done, cancelled, dead, pulled or aborted')
end

local span = limit
if wanted ~= '' then span = limit * 10 end
local start = 0
if resuming then start = resume_rank(finished_key, after_score, after_member, true) end
-- one more than span: is there a next page?
local flat = redis.call('ZREVRANGE', finished_key, start, start + span, 'WITHSCORES')
local reply, looked, listed = {false}, 0, 0
for i = 1, math.min(#flat, 2 * span), 2 do
  local id = flat[i]
  looked = looked + 1
  local raw = redis.call('HGET', history_key, id)
  if raw then
    local record = {cmsgpack.unpack(raw)}
    local outcome = OUTCOME_NAMES[record[OUTCOME]]
    if wanted == '' or outcome == wanted then
      reply[#reply + 1] = {id, outcome, record[FINISHED_AT], record[F_VERSION],
        record[F_ATTEMPTS], record[RESULT], record[LAST_ERROR]}
      listed = listed + 1
      if listed >= limit then break end
    end
  end
end
if #flat > 2 * looked then reply[1] = {flat[2 * looked], flat[2 * looked - 1]} end
return reply
