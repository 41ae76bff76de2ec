-- An organisation's seats on a cluster, in a slot of their own: a hash of its users, each with
-- 'p<ms>' (a login reserved a seat until then and is being made) or 'c<event>' (a session made
-- by the event with that id in its user's group holds it). A login reserves, is made on its
-- user's slot, then confirms; an end that leaves the user no session there releases, unless a
-- session was made since (so a release racing a new login of the same user never frees the new
-- login's seat). Event ids order a group's changes strictly, even within a millisecond. A
-- reservation that lapsed unconfirmed (its node died between making the session and confirming)
-- still holds its seat until its user's slot is asked whether the session was made.
-- KEYS: the organisation's hash. ARGV: what to do, the time ('' = Redis' clock), then:
--   reserve: user, seats ('' = no limit), how long a reservation holds (ms), keep (ms)
--            -> {'ok'} or {'full', user, kind, ...} (the users to ask about: those holding a
--            seat by a made session, kind 'c', or by a lapsed reservation, kind 'p')
--   confirm: user, the event that made its session, keep (ms) -> 'ok'
--   release: user, the newest event when the user was seen without a session there
--            -> 1 if released
--   settle:  user, the newest event when the user was seen with a session there: a lapsed
--            reservation becomes a made session's seat -> 'ok'
--   cancel:  user (a reservation whose login was refused) -> 1 if cancelled
--   count:   -> the number of reservations still pending, then the users to ask about (user,
--            kind, ...)
local op, key = ARGV[1], KEYS[1]
local now
if ARGV[2] ~= '' then now = tonumber(ARGV[2]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(value) return string.sub(value, 1, 1), string.sub(value, 2) end
-- Whether event a is not after event b ('<ms>-<seq>'; an earlier release's '<ms>' is '<ms>-0').
local function not_after(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-?(%d*)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-?(%d*)$')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms < b_ms or (a_ms == b_ms and (tonumber(a_seq) or 0) <= (tonumber(b_seq) or 0))
end
local function lapsed(kind, at) return kind == 'p' and tonumber(at) <= now end
-- Pending reservations, and the users whose seat only their user's slot can vouch for.
local function holders()
  local pending, doubtful, all = 0, {}, redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local kind, at = state(all[i + 1])
    if kind == 'p' and not lapsed(kind, at) then
      pending = pending + 1
    else
      table.insert(doubtful, all[i]); table.insert(doubtful, kind)
    end
  end
  return pending, doubtful
end
local function keep(ms)
  redis.call('PEXPIREAT', key, now + tonumber(ms), 'NX')
  redis.call('PEXPIREAT', key, now + tonumber(ms), 'GT')
end

if op == 'reserve' then
  local user, seats, hold = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local held = redis.call('HGET', key, user)
  if held then
    if state(held) == 'p' then redis.call('HSET', key, user, 'p' .. string.format('%d', now + hold)) end
    return {'ok'}
  end
  if seats ~= '' and redis.call('HLEN', key) >= tonumber(seats) then
    local _, doubtful = holders()
    table.insert(doubtful, 1, 'full')
    return doubtful
  end
  redis.call('HSET', key, user, 'p' .. string.format('%d', now + hold))
  keep(ARGV[6])
  return {'ok'}
elseif op == 'confirm' then
  local user, made = ARGV[3], ARGV[4]
  local held = redis.call('HGET', key, user)
  if held then
    local kind, at = state(held)
    if kind == 'c' and not_after(made, at) then return 'ok' end
  end
  redis.call('HSET', key, user, 'c' .. made)
  keep(ARGV[5])
  return 'ok'
elseif op == 'release' then
  local held = redis.call('HGET', key, ARGV[3])
  if not held then return 0 end
  local kind, at = state(held)
  if (kind == 'c' and not_after(at, ARGV[4])) or lapsed(kind, at) then
    return redis.call('HDEL', key, ARGV[3])
  end
  return 0
elseif op == 'settle' then
  local held = redis.call('HGET', key, ARGV[3])
  if held and lapsed(state(held)) then redis.call('HSET', key, ARGV[3], 'c' .. ARGV[4]) end
  return 'ok'
elseif op == 'cancel' then
  local held = redis.call('HGET', key, ARGV[3])
  if held and state(held) == 'p' then return redis.call('HDEL', key, ARGV[3]) end
  return 0
elseif op == 'count' then
  local pending, doubtful = holders()
  table.insert(doubtful, 1, pending)
  return doubtful
end
return redis.error_reply('unknown seat operation ' .. op)
