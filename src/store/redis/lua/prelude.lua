-- Every script is given, first, the prefix, its group's tag and number and how many groups
-- there are (see keys.rs), then the change channel, the time ('' = Redis' clock) and the
-- maximum lifetime in ms; its own arguments follow from ARGV[8]. KEYS begin with its group's
-- keys.
local CHANNEL, MAX_MS = ARGV[5], tonumber(ARGV[7])

-- Now, in milliseconds: by Redis' clock, so that every node decides expiry by the same clock
-- however its own is set; or the time a caller gives (a test travelling in time).
local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function clock(given)
  if given ~= '' then return tonumber(given) end
  return redis_now()
end
local NOW = clock(ARGV[6])

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

local function session_expires_at(s)
  return expires_at(tonumber(s[LAST_ACTIVE_AT]), tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), MAX_MS,
    s[REAUTHENTICATE_BY] and tonumber(s[REAUTHENTICATE_BY]))
end

-- Whether a user of this group has a live session in an organisation: holds one of its seats.
local function seated(user, organisation)
  for _, sid in ipairs(redis.call('SMEMBERS', user_key(user))) do
    local s = read_session(session_key(sid))
    if s[USER_ID] and s[ORGANISATION] == organisation and session_expires_at(s) > NOW then
      return true
    end
  end
  return false
end

-- Takes session `id` out of its user's set, and the user out of the group's once it has none.
local function unlist(user, id)
  local set = user_key(user)
  redis.call('SREM', set, id)
  if redis.call('SCARD', set) == 0 then redis.call('SREM', USERS_KEY, user) end
end

-- The id of the newest event in the group's log ('0-0' before the first). Every change of the
-- group's sessions makes an event, so it orders changes in the group strictly, even those made
-- in the same millisecond: a cluster's seats go by it.
local function newest_event()
  local newest = redis.call('XREVRANGE', EVENT_LOG_KEY, '+', '-', 'COUNT', 1)[1]
  return newest and newest[1] or '0-0'
end

-- The next id in the group's event log: by Redis' clock (never before the log's newest), its
-- sequence numbered in steps of GROUPS from the group's number, so that ids made in different
-- groups' logs never meet and all sort by time.
local function next_event_id()
  local ms, step = redis_now(), 0
  local newest = newest_event()
  if newest ~= '0-0' then
    local last_ms, last_seq = string.match(newest, '^(%d+)-(%d+)$')
    last_ms, last_seq = tonumber(last_ms), tonumber(last_seq)
    if last_ms >= ms then ms, step = last_ms, math.floor(last_seq / GROUPS) + 1 end
  end
  return string.format('%d-%d', ms, step * GROUPS + GROUP)
end

-- Append an event to the group's capped event log: its kind, reason, time and session id, and
-- the session's fields `s` (in ROW order; never the digest). Every node reads the logs.
-- Returns the event's id.
local function emit(kind, reason, id, s)
  local entry = {'kind', kind, 'why', reason, 'at', string.format('%d', NOW), 'sid', id}
  for i = 1, #ROW do
    if ROW[i] ~= F_DIGEST and s[i] then
      table.insert(entry, ROW[i]); table.insert(entry, s[i])
    end
  end
  -- A cluster's groups share the length, each keeping a few times its share.
  local length = GROUPS == 1 and EVENT_LOG_LENGTH or math.max(1000, math.ceil(EVENT_LOG_LENGTH * 4 / GROUPS))
  return redis.call('XADD', EVENT_LOG_KEY, 'MAXLEN', '~', length, next_event_id(), unpack(entry))
end

-- Remember why session `id`'s token (whose secret has `digest`) stopped working: its reason,
-- time and the first half of the digest, so that a 401 tells the real secret's holder (and no
-- guesser) why. The newest STOPPED_KEPT of all groups are kept (each its share).
local function remember_stop(id, why, digest)
  redis.call('HSET', STOPPED_KEY, id, why .. ' ' .. string.format('%d', NOW) .. ' ' .. string.sub(digest or '', 1, 32))
  redis.call('ZADD', STOPPED_ORDER_KEY, NOW, id)
  if redis.call('ZCARD', STOPPED_ORDER_KEY) > math.ceil(STOPPED_KEPT / GROUPS) then
    local oldest = redis.call('ZPOPMIN', STOPPED_ORDER_KEY, 16)
    for i = 1, #oldest, 2 do redis.call('HDEL', STOPPED_KEY, oldest[i]) end
  end
end

-- End session `id` (fields `s`): delete it, unlist it, remember why, and announce it: its
-- event, then the change feed's message, which carries the event's id so that listings know
-- where they stand in the events.
local function end_session(id, s, reason)
  redis.call('DEL', session_key(id))
  unlist(s[USER_ID], id)
  remember_stop(id, reason, s[DIGEST])
  local event = emit('ended', reason, id, s)
  redis.call('PUBLISH', CHANNEL, cjson.encode({op = 'd', id = id, e = event}))
end

-- Of the organisations `orgs` (a set: organisation -> true), those in which `user` has no live
-- session left: on a cluster, their seats are given back (seats.rs).
local function vacated(user, orgs, reply)
  for org in pairs(orgs) do
    if not seated(user, org) then table.insert(reply, user); table.insert(reply, org) end
  end
  return reply
end

-- How long a session's hash outlives its expiry: the reaper ends it meanwhile, saying so.
local function keep_until(expires)
  return expires + EXPIRED_KEPT_MS
end
