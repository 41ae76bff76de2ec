
-- The expiry rule (Rust: domain::session::expires_at), in milliseconds.
local function expires_at(last_active, timeout_seconds, created, max_ms)
  return math.min(last_active + timeout_seconds * 1000, created + max_ms)
end

-- A session's fields in ROW order (false where absent; all false when there is no session).
local function read_session(key)
  return redis.call('HMGET', key, unpack(ROW))
end

local function session_expires_at(s, max_ms)
  return expires_at(tonumber(s[LAST_ACTIVE_AT]), tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), max_ms)
end

