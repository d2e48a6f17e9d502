-- pause: stop a topic from leasing jobs; puts, gets and deletes go on.
-- KEYS[1] meta hash
-- Returns: 1 if the topic was running, 0 if it was already paused.
-- Complexity: O(1).
local meta_key = KEYS[1]
if #KEYS ~= 1 then return redis.error_reply('ERR pause: expected 1 key') end
return redis.call('HSET', meta_key, 'paused', '1')
