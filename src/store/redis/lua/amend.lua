-- Change a live session in place: a new token (its digest), a new authentication, or the client
-- address last reported; and say so (the event, and the change feed's copy of the row).
-- KEYS: the group's keys, then the session hash.
-- ARGV: the common ones (see prelude.lua), then the session id, the presented digest ('' = not
--       checked), the new digest (''= unchanged), authenticated at, assurance level, timeout,
--       reauthenticate by ('' for all four = unchanged; by '-' = none), the client address
--       ('' = unchanged), whether a new address is announced ('1'/'0').
-- Returns nil, or the id followed by the session's ROW fields as they are now.
local id = ARGV[8]
local presented, digest, auth_at, level, timeout, by, ip = ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]
local report = ARGV[16] == '1'
local key = KEYS[5]
local s = read_session(key)
if not s[USER_ID] or session_expires_at(s) <= NOW then return false end
if presented ~= '' and s[DIGEST] ~= presented then return false end
local now_text = string.format('%d', NOW)
local set, kind, why = {}, false, ''
local function put(field, position, value)
  table.insert(set, field); table.insert(set, value); s[position] = value
end
if digest ~= '' then
  remember_stop(id, 'rotated', s[DIGEST])
  put(F_DIGEST, DIGEST, digest)
  kind = 'rotated'
end
if auth_at ~= '' then
  put(F_AUTHENTICATED_AT, AUTHENTICATED_AT, auth_at)
  put(F_ASSURANCE_LEVEL, ASSURANCE_LEVEL, level)
  put(F_TIMEOUT_SECONDS, TIMEOUT_SECONDS, timeout)
  if by == '-' then
    redis.call('HDEL', key, F_REAUTHENTICATE_BY); s[REAUTHENTICATE_BY] = false
  else
    put(F_REAUTHENTICATE_BY, REAUTHENTICATE_BY, by)
  end
  kind = 'reauthenticated'
end
if digest ~= '' or auth_at ~= '' then
  -- The holder at work: activity.
  if NOW > tonumber(s[LAST_ACTIVE_AT]) then put(F_LAST_ACTIVE_AT, LAST_ACTIVE_AT, now_text) end
end
if ip ~= '' then
  local last = s[LAST_IP_ADDRESS] or s[IP_ADDRESS]
  if last ~= ip then
    put(F_LAST_IP_ADDRESS, LAST_IP_ADDRESS, ip)
    if not kind and report then kind, why = 'ip-changed', last end
  end
end
if #set > 0 then
  redis.call('HSET', key, unpack(set))
  local expires = expires_at(tonumber(s[LAST_ACTIVE_AT]), tonumber(s[TIMEOUT_SECONDS]), tonumber(s[CREATED_AT]), MAX_MS,
    s[REAUTHENTICATE_BY] and tonumber(s[REAUTHENTICATE_BY]))
  redis.call('PEXPIREAT', key, keep_until(expires))
end
if #set > 0 then
  -- Every node's copy follows; the event is for what is announced.
  local event = kind and emit(kind, why, id, s) or nil
  local row = {}
  for i = 1, #ROW do row[i] = s[i] end
  redis.call('PUBLISH', CHANNEL, cjson.encode({op = 'u', id = id, row = row, e = event}))
end
return {id, unpack(s)}
