-- End the live sessions among the ids that are in scope: an organisation's sessions, except
-- those holding the admin role, or every session.
-- ARGV: now ('' = Redis' clock), max lifetime ms, prefix, channel, organisation
--       ("" = every organisation), why they end (the event's reason), ids...
-- Returns, per session ended, its id followed by its ROW fields.
local now, max_ms, prefix, channel, scope = clock(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local reason = ARGV[6]
local ended = {}
for n = 7, #ARGV do
  local id = ARGV[n]
  local key = session_key(prefix, id)
  local s = read_session(key)
  local in_scope = scope == '' or (s[ORGANISATION] == scope and not holds_admin(s[ROLES]))
  if s[USER_ID] and in_scope and session_expires_at(s, max_ms) > now then
    redis.call('DEL', key)
    redis.call('SREM', user_key(prefix, s[USER_ID]), id)
    announce_end(prefix, channel, reason, now, id, s)
    table.insert(ended, id)
    for i = 1, #ROW do table.insert(ended, s[i]) end
  end
end
return ended
