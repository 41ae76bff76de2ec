-- Validate a token and touch its session, in one round trip.
-- KEYS: the group's keys, then the session hash the token's selector names.
-- ARGV: the common ones (see prelude.lua), then the digest of the token's secret (hex).
-- Returns nil, or the id followed by the session's ROW fields. The digest is of a 256-bit
-- secret, so comparing it with plain equality reveals nothing an attacker could use.
local now_text = string.format('%d', NOW)
local key = KEYS[5]
local s = read_session(key)
if not s[USER_ID] or s[DIGEST] ~= ARGV[8] then return false end
if session_expires_at(s) <= NOW then return false end
local last = tonumber(s[LAST_ACTIVE_AT])
if NOW > last then
  local expires = expires_at(NOW, tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), MAX_MS,
    s[REAUTHENTICATE_BY] and tonumber(s[REAUTHENTICATE_BY]))
  redis.call('HSET', key, F_LAST_ACTIVE_AT, now_text)
  redis.call('PEXPIREAT', key, keep_until(expires))
  s[LAST_ACTIVE_AT] = now_text
  -- Other nodes' copies learn of activity at most once a second (when the touch enters a new
  -- second): enough for listing.
  if math.floor(NOW / 1000) > math.floor(last / 1000) then
    redis.call('PUBLISH', CHANNEL, cjson.encode({op = 't', id = session_id_of(key), l = now_text}))
  end
end
return {session_id_of(key), unpack(s)}
