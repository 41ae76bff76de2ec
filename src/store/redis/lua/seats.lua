-- Count an organisation's seats in use on one Redis: its users with a live session there. Users
-- without one any more are cleared from the set on the way.
-- KEYS: the group's keys, then the organisation's seat set.
-- ARGV: the common ones (see prelude.lua), then the organisation.
for _, user in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  if not seated(user, ARGV[8]) then redis.call('SREM', KEYS[5], user) end
end
return redis.call('SCARD', KEYS[5])
