-- An organisation's seats on a cluster, in a slot of their own: a hash of its users, each with
-- 'p<ms>' (a login reserved a seat until then and is being made) or 'c<event>' (a session made
-- by the event with that id in its user's group holds it). A login reserves, is made on its
-- user's slot, then confirms; an end that leaves the user no session there releases, unless a
-- session was made since (so a release racing a new login of the same user never frees the new
-- login's seat). Event ids order a group's changes strictly, even within a millisecond.
-- KEYS: the organisation's hash. ARGV: what to do, the time ('' = Redis' clock), then:
--   reserve: user, seats ('' = no limit), how long a reservation holds (ms), keep (ms)
--            -> {'ok'} or {'full', user, ...} (the users holding a seat by a made session)
--   confirm: user, the event that made its session, keep (ms) -> 'ok'
--   release: user, the newest event when the user was seen without a session there
--            -> 1 if released
--   cancel:  user (a reservation whose login was refused) -> 1 if cancelled
--   count:   -> the number of reservations, then the users holding a seat by a made session
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
local function clear_lapsed()
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local kind, at = state(all[i + 1])
    if kind == 'p' and tonumber(at) <= now then redis.call('HDEL', key, all[i]) end
  end
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
    clear_lapsed()
    if redis.call('HLEN', key) >= tonumber(seats) then
      local full, all = {'full'}, redis.call('HGETALL', key)
      for i = 1, #all, 2 do
        if state(all[i + 1]) == 'c' then table.insert(full, all[i]) end
      end
      return full
    end
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
  if kind == 'c' and not_after(at, ARGV[4]) then return redis.call('HDEL', key, ARGV[3]) end
  return 0
elseif op == 'cancel' then
  local held = redis.call('HGET', key, ARGV[3])
  if held and state(held) == 'p' then return redis.call('HDEL', key, ARGV[3]) end
  return 0
elseif op == 'count' then
  clear_lapsed()
  local reply, all = {0}, redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if state(all[i + 1]) == 'c' then table.insert(reply, all[i]) else reply[1] = reply[1] + 1 end
  end
  return reply
end
return redis.error_reply('unknown seat operation ' .. op)
