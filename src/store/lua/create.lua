-- Log a user in: apply the concurrent-session policy and the per-user limit, and insert,
-- atomically.
-- KEYS: user set, session hash, the organisation's seat set (its users).
-- ARGV: policy, now ('' = Redis' clock), max lifetime ms, prefix, channel, id, digest, user_id,
--       name, organisation, ip, server, roles (JSON), timeout seconds, user agent ("" = none),
--       has user agent ("1"/"0"), the most sessions a user may have (0 = no limit), the
--       organisation's seats ('' = no limit).
-- Returns {'denied', id, ip, server, ...}, {'seat-limit'}, or {'ok', now, reason, id, ...} for the
-- sessions this login ended ('replaced' or 'evicted').
local policy, now, max_ms, prefix, channel = ARGV[1], clock(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local id, digest, ip = ARGV[6], ARGV[7], ARGV[11]
local now_text = string.format('%d', now)

-- The user's live sessions; expired ones and stale index entries are cleaned on the way.
local live = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = prefix .. 's:' .. sid
  local s = read_session(key)
  if not s[USER_ID] then
    redis.call('SREM', KEYS[1], sid)
  elseif session_expires_at(s, max_ms) <= now then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[1], sid)
    redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = sid}))
    emit(prefix, 'ended', 'expired', now, sid, s)
  else
    table.insert(live, {sid, s[IP_ADDRESS], s[SERVER_NAME], tonumber(s[LAST_ACTIVE_AT]),
      s[ORGANISATION] == ARGV[10], s})
  end
end

local function end_session(live_session, reason, ended)
  local sid = live_session[1]
  redis.call('DEL', prefix .. 's:' .. sid)
  redis.call('SREM', KEYS[1], sid)
  redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = sid}))
  emit(prefix, 'ended', reason, now, sid, live_session[6])
  table.insert(ended, reason); table.insert(ended, sid)
end

-- The login being decided, as far as a denial's event tells it.
local function deny(reason)
  local attempt = {}
  attempt[USER_ID], attempt[ORGANISATION], attempt[IP_ADDRESS], attempt[ROLES] = ARGV[8], ARGV[10], ip, ARGV[13]
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
if ARGV[18] ~= '' and not here and redis.call('SISMEMBER', KEYS[3], ARGV[8]) == 0 then
  local seats = tonumber(ARGV[18])
  if redis.call('SCARD', KEYS[3]) >= seats then
    for _, user in ipairs(redis.call('SMEMBERS', KEYS[3])) do
      if not seated(prefix, user, ARGV[10], now, max_ms) then redis.call('SREM', KEYS[3], user) end
    end
    if redis.call('SCARD', KEYS[3]) >= seats then
      deny('seat-limit')
      return {'seat-limit'}
    end
  end
end
redis.call('SADD', KEYS[3], ARGV[8])
redis.call('PEXPIREAT', KEYS[3], now + max_ms, 'NX')
redis.call('PEXPIREAT', KEYS[3], now + max_ms, 'GT')

if policy == 'replace' then
  for _, s in ipairs(live) do end_session(s, 'replaced', ended) end
  live = {}
end

-- Beyond the limit, the least recently active sessions make room for this one.
local limit = tonumber(ARGV[17])
if limit > 0 and #live >= limit then
  table.sort(live, function(a, b) return a[4] < b[4] end)
  for i = 1, #live - limit + 1 do end_session(live[i], 'evicted', ended) end
end

local timeout = tonumber(ARGV[14])
local expires = expires_at(now, timeout, now, max_ms)
local row = {}
row[USER_ID], row[NAME], row[ORGANISATION], row[IP_ADDRESS] = ARGV[8], ARGV[9], ARGV[10], ip
row[SERVER_NAME], row[ROLES], row[TIMEOUT_SECONDS] = ARGV[12], ARGV[13], ARGV[14]
row[CREATED_AT], row[LAST_ACTIVE_AT], row[DIGEST] = now_text, now_text, digest
row[USER_AGENT] = ARGV[16] == '1' and ARGV[15] or false
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
redis.call('PUBLISH', channel, cjson.encode({op = 'c', id = id, row = row}))
emit(prefix, 'created', '', now, id, row)
return ended
