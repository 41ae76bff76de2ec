-- Validate a token and touch its session, in one round trip.
-- KEYS: the session hash the token's selector names.
-- ARGV: now, max lifetime ms, prefix, channel, digest of the token's secret (hex).
-- Returns nil, or the id followed by the session's ROW fields. The digest is of a 256-bit
-- secret, so comparing it with plain equality reveals nothing an attacker could use.
local now, max_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local key = KEYS[1]
local id = string.sub(key, string.len(ARGV[3]) + 3)
local s, row = read_session(key)
if not s.user_id or s.digest ~= ARGV[5] then return false end
if session_expires_at(s, max_ms) <= now then return false end
if now > tonumber(s.last_active_at) then
  local expires = expires_at(now, tonumber(s.timeout_seconds), tonumber(s.created_at), max_ms)
  redis.call('HSET', key, F.last_active_at, ARGV[1])
  redis.call('PEXPIREAT', key, expires)
  row[POSITION.last_active_at] = ARGV[1]
  -- Other nodes' copies learn of activity at most once a second: enough for listing.
  local published = redis.call('HGET', key, F.published_at)
  if now - tonumber(published or 0) >= 1000 then
    redis.call('HSET', key, F.published_at, ARGV[1])
    redis.call('PUBLISH', ARGV[4], cjson.encode({op = 't', id = id, l = ARGV[1]}))
  end
end
return {id, unpack(row)}
