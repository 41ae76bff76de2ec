-- End the live sessions among the ids (all of this group) that are in scope: an organisation's
-- sessions, except those holding the admin role, or every session.
-- KEYS: the group's keys.
-- ARGV: the common ones (see prelude.lua), then the organisation ('' = every organisation),
--       why they end (the event's reason), ids...
-- Returns two lists: per session ended, its id followed by its ROW fields; and the users and
-- organisations in which those users have no live session left (user, organisation, ...); and
-- the group's newest event then.
local scope, reason = ARGV[8], ARGV[9]
local ended, left = {}, {}
for n = 10, #ARGV do
  local id = ARGV[n]
  local s = read_session(session_key(id))
  local in_scope = scope == '' or (s[ORGANISATION] == scope and not holds_admin(s[ROLES]))
  if s[USER_ID] and in_scope and session_expires_at(s) > NOW then
    end_session(id, s, reason)
    left[s[USER_ID]] = left[s[USER_ID]] or {}
    left[s[USER_ID]][s[ORGANISATION]] = true
    table.insert(ended, id)
    for i = 1, #ROW do table.insert(ended, s[i]) end
  end
end
local gone = {}
for user, orgs in pairs(left) do vacated(user, orgs, gone) end
return {ended, gone, newest_event()}
