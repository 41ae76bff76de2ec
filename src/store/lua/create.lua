-- Log a user in: apply the concurrent-session policy and insert, atomically.
-- KEYS: user set, session hash, token key.
-- ARGV: policy, now, max lifetime ms, prefix, channel, id, digest, user_id, name,
--       organisation, ip, server, roles (JSON), timeout seconds, user agent ("" = none),
--       has user agent ("1"/"0").
local policy, now, max_ms, prefix, channel = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local id, digest, ip = ARGV[6], ARGV[7], ARGV[11]

-- The user's live sessions; expired ones and stale index entries are cleaned on the way.
local live = {}
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = prefix .. 's:' .. sid
  local f = redis.call('HMGET', key, 'i', 'v', 't', 'c', 'l', 'd')
  if not f[1] then
    redis.call('SREM', KEYS[1], sid)
  elseif math.min(tonumber(f[5]) + tonumber(f[3]) * 1000, tonumber(f[4]) + max_ms) <= now then
    redis.call('DEL', key, prefix .. 't:' .. f[6])
    redis.call('SREM', KEYS[1], sid)
    redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = sid}))
  else
    table.insert(live, {sid, f[1], f[2], f[6]})
  end
end

local replaced = {'ok'}
if policy == 'deny-other-ip' then
  for _, s in ipairs(live) do
    if s[2] ~= ip then
      local denied = {'denied'}
      for _, d in ipairs(live) do
        table.insert(denied, d[1]); table.insert(denied, d[2]); table.insert(denied, d[3])
      end
      return denied
    end
  end
elseif policy == 'replace' then
  for _, s in ipairs(live) do
    redis.call('DEL', prefix .. 's:' .. s[1], prefix .. 't:' .. s[4])
    redis.call('SREM', KEYS[1], s[1])
    redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = s[1]}))
    table.insert(replaced, s[1])
  end
end

local timeout = tonumber(ARGV[14])
local expires = math.min(now + timeout * 1000, now + max_ms)
local fields = {'u', ARGV[8], 'n', ARGV[9], 'o', ARGV[10], 'i', ip, 'v', ARGV[12], 'r', ARGV[13],
  't', ARGV[14], 'c', ARGV[2], 'l', ARGV[2], 'p', ARGV[2], 'd', digest}
local event = {op = 'c', id = id, u = ARGV[8], n = ARGV[9], o = ARGV[10], i = ip, v = ARGV[12],
  r = ARGV[13], t = ARGV[14], c = ARGV[2], l = ARGV[2], d = digest}
if ARGV[16] == '1' then
  table.insert(fields, 'a'); table.insert(fields, ARGV[15])
  event.a = ARGV[15]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIREAT', KEYS[2], expires)
redis.call('SET', KEYS[3], id, 'PXAT', expires)
redis.call('SADD', KEYS[1], id)
-- The user index lives as long as the longest session it may hold.
redis.call('PEXPIREAT', KEYS[1], now + max_ms, 'NX')
redis.call('PEXPIREAT', KEYS[1], now + max_ms, 'GT')
redis.call('PUBLISH', channel, cjson.encode(event))
return replaced
