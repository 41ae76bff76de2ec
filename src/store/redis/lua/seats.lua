-- Count an organisation's seats in use: its users with a live session there. Users without
-- one any more are cleared from the set on the way.
-- KEYS: the organisation's seat set. ARGV: now ('' = Redis' clock), max lifetime ms, prefix,
-- organisation.
local now, max_ms, prefix = clock(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for _, user in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not seated(prefix, user, ARGV[4], now, max_ms) then redis.call('SREM', KEYS[1], user) end
end
return redis.call('SCARD', KEYS[1])
