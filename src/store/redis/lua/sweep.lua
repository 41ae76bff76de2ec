-- End expired sessions, for one step over the group's users: each is ended and announced
-- (reason 'expired') exactly once, by whichever node's step finds it. Entries whose hash is
-- already gone are dropped silently.
-- KEYS: the group's keys.
-- ARGV: the common ones (see prelude.lua), then the cursor and how many users to look at.
-- Returns the next cursor, the number of sessions ended, the group's newest event then, and the
-- users and organisations in which those users have no live session left (user, organisation,
-- ...).
local step = redis.call('SSCAN', USERS_KEY, ARGV[8], 'COUNT', ARGV[9])
local reply, count = {step[1], '0', ''}, 0
for _, user in ipairs(step[2]) do
  local left = {}
  local ids = redis.call('SMEMBERS', user_key(user))
  if #ids == 0 then redis.call('SREM', USERS_KEY, user) end
  for _, id in ipairs(ids) do
    local s = read_session(session_key(id))
    if not s[USER_ID] then
      unlist(user, id)
    elseif session_expires_at(s) <= NOW then
      end_session(id, s, 'expired')
      left[s[ORGANISATION]] = true
      count = count + 1
    end
  end
  vacated(user, left, reply)
end
reply[2] = tostring(count)
reply[3] = newest_event()
return reply
