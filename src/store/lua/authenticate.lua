-- Validate a token digest and touch its session, in one round trip.
-- KEYS: token key. ARGV: now, max lifetime ms, prefix, channel.
-- Returns nil, or the id followed by the session's ROW fields.
local now, max_ms, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = prefix .. 's:' .. id
local s, row = read_session(key)
if not s.user_id then return false end
if session_expires_at(s, max_ms) <= now then return false end
if now > tonumber(s.last_active_at) then
  local expires = expires_at(now, tonumber(s.timeout_seconds), tonumber(s.created_at), max_ms)
  redis.call('HSET', key, F.last_active_at, ARGV[1])
  redis.call('PEXPIREAT', key, expires)
  redis.call('PEXPIREAT', KEYS[1], expires)
  row[POSITION.last_active_at] = ARGV[1]
  -- Other nodes' copies learn of activity at most once a second: enough for listing.
  local published = redis.call('HGET', key, F.published_at)
  if now - tonumber(published or 0) >= 1000 then
    redis.call('HSET', key, F.published_at, ARGV[1])
    redis.call('PUBLISH', ARGV[4], cjson.encode({op = 't', id = id, l = ARGV[1]}))
  end
end
return {id, unpack(row)}
