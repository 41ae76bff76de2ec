-- Log a user in: apply the concurrent-session policy and the per-user limit, and insert,
-- atomically.
-- KEYS: user set, session hash, the organisation's seat set (its users).
-- ARG (by name, as scripts.rs passes them): policy, now ('' = Redis' clock), max_ms, prefix,
--       channel, id, digest, user_id, name, organisation, ip, server, roles (JSON), timeout
--       (seconds), user_agent, has_user_agent ('1'/'0'), max_per_user (0 = no limit), seats
--       ('' = no limit), assurance_level, reauthenticate_by ('' = none), device (JSON, '' =
--       none).
-- Returns {'denied', id, ip, server, organisation, holds admin ('1'/'0'), ...}, {'seat-limit'}, or {'ok', now, reason, id, ...} for the
-- sessions this login ended ('replaced' or 'evicted').
local policy, now, max_ms, prefix, channel = ARG.policy, clock(ARG.now), tonumber(ARG.max_ms), ARG.prefix, ARG.channel
local id, digest, ip = ARG.id, ARG.digest, ARG.ip
local now_text = string.format('%d', now)

-- The user's live sessions; expired ones and stale index entries are cleaned on the way.
local live = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = session_key(prefix, sid)
  local s = read_session(key)
  if not s[USER_ID] then
    redis.call('SREM', KEYS[1], sid)
  elseif session_expires_at(s, max_ms) <= now then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[1], sid)
    announce_end(prefix, channel, 'expired', now, sid, s)
  else
    table.insert(live, {sid, s[IP_ADDRESS], s[SERVER_NAME], tonumber(s[LAST_ACTIVE_AT]),
      s[ORGANISATION] == ARG.organisation, s})
  end
end

local function end_session(live_session, reason, ended)
  local sid = live_session[1]
  redis.call('DEL', session_key(prefix, sid))
  redis.call('SREM', KEYS[1], sid)
  announce_end(prefix, channel, reason, now, sid, live_session[6])
  table.insert(ended, reason); table.insert(ended, sid)
end

-- The login being decided, as far as a denial's event tells it.
local function deny(reason)
  local attempt = {}
  attempt[USER_ID], attempt[ORGANISATION], attempt[IP_ADDRESS], attempt[ROLES] = ARG.user_id, ARG.organisation, ip, ARG.roles
  emit(prefix, 'denied', reason, now, '', attempt)
end

-- The time the session was made at comes back first: the caller's record must agree with Redis.
local ended = {'ok', now_text}
if policy == 'deny-other-ip' then
  for _, s in ipairs(live) do
    if s[2] ~= ip then
      deny('other-ip')
      local denied = {'denied'}
      for _, d in ipairs(live) do
        table.insert(denied, d[1]); table.insert(denied, d[2]); table.insert(denied, d[3])
        table.insert(denied, d[6][ORGANISATION]); table.insert(denied, holds_admin(d[6][ROLES]) and '1' or '0')
      end
      return denied
    end
  end
end

-- A user new to a limited organisation takes a seat: decided before anything ends. Every
-- organisation's users are kept (a limit set later counts them all); a full one is first
-- cleared of users who no longer have a live session there.
local here = false
for _, s in ipairs(live) do here = here or s[5] end
if ARG.seats ~= '' and not here and redis.call('SISMEMBER', KEYS[3], ARG.user_id) == 0 then
  local seats = tonumber(ARG.seats)
  if redis.call('SCARD', KEYS[3]) >= seats then
    for _, user in ipairs(redis.call('SMEMBERS', KEYS[3])) do
      if not seated(prefix, user, ARG.organisation, now, max_ms) then redis.call('SREM', KEYS[3], user) end
    end
    if redis.call('SCARD', KEYS[3]) >= seats then
      deny('seat-limit')
      return {'seat-limit'}
    end
  end
end
redis.call('SADD', KEYS[3], ARG.user_id)
redis.call('PEXPIREAT', KEYS[3], now + max_ms, 'NX')
redis.call('PEXPIREAT', KEYS[3], now + max_ms, 'GT')

if policy == 'replace' then
  for _, s in ipairs(live) do end_session(s, 'replaced', ended) end
  live = {}
end

-- Beyond the limit, the least recently active sessions make room for this one.
local limit = tonumber(ARG.max_per_user)
if limit > 0 and #live >= limit then
  table.sort(live, function(a, b) return a[4] < b[4] end)
  for i = 1, #live - limit + 1 do end_session(live[i], 'evicted', ended) end
end

local timeout = tonumber(ARG.timeout)
local by = ARG.reauthenticate_by ~= '' and ARG.reauthenticate_by or false
local expires = expires_at(now, timeout, now, max_ms, by and tonumber(by))
local row = {}
row[USER_ID], row[NAME], row[ORGANISATION], row[IP_ADDRESS] = ARG.user_id, ARG.name, ARG.organisation, ip
row[SERVER_NAME], row[ROLES], row[TIMEOUT_SECONDS] = ARG.server, ARG.roles, ARG.timeout
row[CREATED_AT], row[LAST_ACTIVE_AT], row[DIGEST] = now_text, now_text, digest
row[USER_AGENT] = ARG.has_user_agent == '1' and ARG.user_agent or false
row[AUTHENTICATED_AT], row[ASSURANCE_LEVEL], row[REAUTHENTICATE_BY] = now_text, ARG.assurance_level, by
-- The last address is the login's until a validation reports another: no field until then.
row[LAST_IP_ADDRESS] = false
row[DEVICE] = ARG.device ~= '' and ARG.device or false
-- The hash holds the fields given; the event carries them in ROW order (false = not given).
local fields = {}
for i = 1, #ROW do
  if row[i] then
    table.insert(fields, ROW[i]); table.insert(fields, row[i])
  end
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIREAT', KEYS[2], keep_until(expires))
redis.call('SADD', KEYS[1], id)
-- The user index lives as long as the longest session it may hold.
redis.call('PEXPIREAT', KEYS[1], keep_until(now + max_ms), 'NX')
redis.call('PEXPIREAT', KEYS[1], keep_until(now + max_ms), 'GT')
local event = emit(prefix, 'created', '', now, id, row)
redis.call('PUBLISH', channel, cjson.encode({op = 'c', id = id, row = row, e = event}))
return ended
