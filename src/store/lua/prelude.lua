
-- The expiry rule (Rust: domain::session::expires_at), in milliseconds.
local function expires_at(last_active, timeout_seconds, created, max_ms)
  return math.min(last_active + timeout_seconds * 1000, created + max_ms)
end

-- A session's hash as a table by meaning, and its values in ROW order (false where absent).
local function read_session(key)
  local values = redis.call('HMGET', key, unpack(ROW))
  local session = {}
  for i, name in ipairs(NAMES) do session[name] = values[i] or nil end
  return session, values
end

local function session_expires_at(s, max_ms)
  return expires_at(tonumber(s.last_active_at), tonumber(s.timeout_seconds), tonumber(s.created_at), max_ms)
end

