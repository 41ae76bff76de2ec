-- Validate a token and touch its session, in one round trip.
-- KEYS: the session hash the token's selector names.
-- ARGV: now ('' = Redis' clock), max lifetime ms, prefix, channel, digest of the token's
--       secret (hex).
-- Returns nil, or the id followed by the session's ROW fields. The digest is of a 256-bit
-- secret, so comparing it with plain equality reveals nothing an attacker could use.
local now, max_ms = clock(ARGV[1]), tonumber(ARGV[2])
local now_text = string.format('%d', now)
local key = KEYS[1]
local s = read_session(key)
if not s[USER_ID] or s[DIGEST] ~= ARGV[5] then return false end
if session_expires_at(s, max_ms) <= now then return false end
local last = tonumber(s[LAST_ACTIVE_AT])
if now > last then
  local expires = expires_at(now, tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), max_ms,
    s[REAUTHENTICATE_BY] and tonumber(s[REAUTHENTICATE_BY]))
  redis.call('HSET', key, F_LAST_ACTIVE_AT, now_text)
  redis.call('PEXPIREAT', key, keep_until(expires))
  s[LAST_ACTIVE_AT] = now_text
  -- Other nodes' copies learn of activity at most once a second (when the touch enters a new
  -- second): enough for listing.
  if math.floor(now / 1000) > math.floor(last / 1000) then
    redis.call('PUBLISH', ARGV[4], cjson.encode({op = 't', id = session_id_of(ARGV[3], key), l = now_text}))
  end
end
return {session_id_of(ARGV[3], key), unpack(s)}
