-- resume: let a paused topic lease jobs again, and wake the workers waiting on it.
-- KEYS[1] meta hash
-- KEYS[2] wake channel
-- Returns: 1 if the topic was paused, 0 if it was already running.
-- Complexity: O(1).
local meta_key, wake_channel = KEYS[1], KEYS[2]
if #KEYS ~= 2 then return redis.error_reply('ERR resume: expected 2 keys') end
local was_paused = redis.call('HDEL', meta_key, 'paused')
if was_paused == 1 then redis.call('PUBLISH', wake_channel, '0') end
return was_paused
