-- End expired sessions, for one SCAN step over the user sets: each is deleted, taken out of its
-- user's set and announced (reason 'expired') exactly once, by whichever node's step finds it.
-- Entries whose hash is already gone are dropped silently.
-- ARGV: now ('' = Redis' clock), max lifetime ms, prefix, channel, cursor, count.
-- Returns the next cursor and the number of sessions ended.
local now, max_ms, prefix, channel = clock(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local step = redis.call('SCAN', ARGV[5], 'MATCH', user_key(prefix, '*'), 'COUNT', ARGV[6])
local ended = 0
for _, set in ipairs(step[2]) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    local key = session_key(prefix, id)
    local s = read_session(key)
    if not s[USER_ID] then
      redis.call('SREM', set, id)
    elseif session_expires_at(s, max_ms) <= now then
      redis.call('DEL', key)
      redis.call('SREM', set, id)
      announce_end(prefix, channel, 'expired', now, id, s)
      ended = ended + 1
    end
  end
end
return {step[1], ended}
