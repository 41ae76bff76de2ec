
-- Now, in milliseconds: by Redis' clock, so that every node decides expiry by the same clock
-- however its own is set; or the time a caller gives (a test travelling in time).
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The expiry rule (Rust: domain::session::expires_at), in milliseconds; `by` (the time the
-- authentication becomes too old for its level) may be false.
local function expires_at(last_active, timeout_seconds, created, max_ms, by)
  local ends = math.min(last_active + timeout_seconds * 1000, created + max_ms)
  if by then ends = math.min(ends, by) end
  return ends
end

-- A session's fields in ROW order (false where absent; all false when there is no session).
local function read_session(key)
  return redis.call('HMGET', key, unpack(ROW))
end

-- Whether a session's roles (JSON) hold admin.
local function holds_admin(roles)
  for _, role in ipairs(cjson.decode(roles or '[]')) do
    if role == ADMIN_ROLE then return true end
  end
  return false
end

local function session_expires_at(s, max_ms)
  return expires_at(tonumber(s[LAST_ACTIVE_AT]), tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), max_ms,
    s[REAUTHENTICATE_BY] and tonumber(s[REAUTHENTICATE_BY]))
end

-- Whether a user has a live session in an organisation: holds one of its seats.
local function seated(prefix, user, organisation, now, max_ms)
  for _, sid in ipairs(redis.call('SMEMBERS', user_key(prefix, user))) do
    local s = read_session(session_key(prefix, sid))
    if s[USER_ID] and s[ORGANISATION] == organisation and session_expires_at(s, max_ms) > now then
      return true
    end
  end
  return false
end


-- Append an event to the capped event log: its kind, reason, time and session id, and the
-- session's fields `s` (in ROW order; never the digest). Every node reads the log. Returns the
-- event's id.
local function emit(prefix, kind, reason, now, id, s)
  local entry = {'kind', kind, 'why', reason, 'at', string.format('%d', now), 'sid', id}
  for i = 1, #ROW do
    if ROW[i] ~= F_DIGEST and s[i] then
      table.insert(entry, ROW[i]); table.insert(entry, s[i])
    end
  end
  return redis.call('XADD', prefix .. EVENT_LOG, 'MAXLEN', '~', EVENT_LOG_LENGTH, '*', unpack(entry))
end

-- Remember why session `id`'s token (whose secret has `digest`) stopped working: its reason,
-- time and the first half of the digest, so that a 401 tells the real secret's holder (and no
-- guesser) why. The newest STOPPED_KEPT are kept.
local function remember_stop(prefix, id, why, now, digest)
  local kept, order = prefix .. STOPPED, prefix .. STOPPED .. ':order'
  redis.call('HSET', kept, id, why .. ' ' .. string.format('%d', now) .. ' ' .. string.sub(digest or '', 1, 32))
  redis.call('ZADD', order, now, id)
  if redis.call('ZCARD', order) > STOPPED_KEPT then
    local oldest = redis.call('ZPOPMIN', order, 16)
    for i = 1, #oldest, 2 do redis.call('HDEL', kept, oldest[i]) end
  end
end

-- Announce that session `id` (fields `s`) ended: its event, then the change feed's message,
-- which carries the event's id so that listings know where they stand in the events.
local function announce_end(prefix, channel, reason, now, id, s)
  remember_stop(prefix, id, reason, now, s[DIGEST])
  local event = emit(prefix, 'ended', reason, now, id, s)
  redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = id, e = event}))
end

-- How long a session's hash outlives its expiry: the reaper ends it meanwhile, saying so.
local function keep_until(expires)
  return expires + EXPIRED_KEPT_MS
end
