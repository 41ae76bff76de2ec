-- Log a user in: apply the concurrent-session policy and the per-user limit, and insert,
-- atomically.
-- KEYS: the group's keys, then the user's set, the session's hash and, on one Redis, the
--       organisation's seat set (a cluster keeps seats in their own slot: seats.rs).
-- ARG (by name, as scripts.rs passes them): the common ones (see prelude.lua), then id,
--       digest, user_id, name, organisation, ip, server, roles (JSON), timeout (seconds),
--       user_agent, max_per_user (0 = no limit), seats ('' = no limit), assurance_level,
--       reauthenticate_by ('' = none), device (JSON, '' = none), seat_refused ('1': on a
--       cluster, no seat was free), has_user_agent ('1'/'0').
-- Returns {'denied', id, ip, server, organisation, holds admin ('1'/'0'), ...}, {'seat-limit'},
-- or {'ok', now, reason, id, ..., 'vacated', user, organisation, ...}: the sessions this login
-- ended ('replaced' or 'evicted'), and the organisations where the user has none left.
local policy, id, digest, ip = ARG.policy, ARG.id, ARG.digest, ARG.ip
local user_set, session, seats_set = KEYS[5], KEYS[6], KEYS[7]
local now_text = string.format('%d', NOW)

-- The user's live sessions; expired ones and stale index entries are cleaned on the way.
local live, left = {}, {}
for _, sid in ipairs(redis.call('SMEMBERS', user_set)) do
  local s = read_session(session_key(sid))
  if not s[USER_ID] then
    unlist(ARG.user_id, sid)
  elseif session_expires_at(s) <= NOW then
    end_session(sid, s, 'expired')
    left[s[ORGANISATION]] = true
  else
    table.insert(live, {sid, s[IP_ADDRESS], s[SERVER_NAME], tonumber(s[LAST_ACTIVE_AT]),
      s[ORGANISATION] == ARG.organisation, s})
  end
end

local ended = {'ok', now_text}
local function end_live(live_session, reason)
  local sid, s = live_session[1], live_session[6]
  end_session(sid, s, reason)
  left[s[ORGANISATION]] = true
  table.insert(ended, reason); table.insert(ended, sid)
end

-- The login being decided, as far as a denial's event tells it.
local function deny(reason)
  local attempt = {}
  attempt[USER_ID], attempt[ORGANISATION], attempt[IP_ADDRESS], attempt[ROLES] = ARG.user_id, ARG.organisation, ip, ARG.roles
  emit('denied', reason, '', attempt)
end

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

-- On a cluster, the organisation's slot found no seat free (seats.rs): a user already there
-- takes none, any other is refused, after the policy (as on one Redis).
if ARG.seat_refused == '1' then
  local here = false
  for _, s in ipairs(live) do here = here or s[5] end
  if not here then
    deny('seat-limit')
    return {'seat-limit'}
  end
end

-- On one Redis, a user new to a limited organisation takes a seat: decided before anything
-- ends. Every organisation's users are kept (a limit set later counts them all); a full one is
-- first cleared of users who no longer have a live session there.
if seats_set then
  local here = false
  for _, s in ipairs(live) do here = here or s[5] end
  if ARG.seats ~= '' and not here and redis.call('SISMEMBER', seats_set, ARG.user_id) == 0 then
    local seats = tonumber(ARG.seats)
    if redis.call('SCARD', seats_set) >= seats then
      for _, user in ipairs(redis.call('SMEMBERS', seats_set)) do
        if not seated(user, ARG.organisation) then redis.call('SREM', seats_set, user) end
      end
      if redis.call('SCARD', seats_set) >= seats then
        deny('seat-limit')
        return {'seat-limit'}
      end
    end
  end
  redis.call('SADD', seats_set, ARG.user_id)
  redis.call('PEXPIREAT', seats_set, NOW + MAX_MS, 'NX')
  redis.call('PEXPIREAT', seats_set, NOW + MAX_MS, 'GT')
end

if policy == 'replace' then
  for _, s in ipairs(live) do end_live(s, 'replaced') end
  live = {}
end

-- Beyond the limit, the least recently active sessions make room for this one.
local limit = tonumber(ARG.max_per_user)
if limit > 0 and #live >= limit then
  table.sort(live, function(a, b) return a[4] < b[4] end)
  for i = 1, #live - limit + 1 do end_live(live[i], 'evicted') end
end

local timeout = tonumber(ARG.timeout)
local by = ARG.reauthenticate_by ~= '' and ARG.reauthenticate_by or false
local expires = expires_at(NOW, timeout, NOW, MAX_MS, by and tonumber(by))
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
redis.call('HSET', session, unpack(fields))
redis.call('PEXPIREAT', session, keep_until(expires))
redis.call('SADD', user_set, id)
redis.call('SADD', USERS_KEY, ARG.user_id)
-- The user index lives as long as the longest session it may hold.
redis.call('PEXPIREAT', user_set, keep_until(NOW + MAX_MS), 'NX')
redis.call('PEXPIREAT', user_set, keep_until(NOW + MAX_MS), 'GT')
local event = emit('created', '', id, row)
redis.call('PUBLISH', CHANNEL, cjson.encode({op = 'c', id = id, row = row, e = event}))
table.insert(ended, 'vacated'); table.insert(ended, event)
return vacated(ARG.user_id, left, ended)
