-- Validate a token digest and touch its session, in one round trip.
-- KEYS: token key. ARGV: now, max lifetime ms, prefix, channel.
-- Returns nil, or the id followed by the fields u n o i v r a t c l d.
local now, max_ms, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local id = redis.call('GET', KEYS[1])
if not id then return false end
local key = prefix .. 's:' .. id
local f = redis.call('HMGET', key, 'u', 'n', 'o', 'i', 'v', 'r', 'a', 't', 'c', 'l', 'd', 'p')
if not f[1] then return false end
local timeout, created, last = tonumber(f[8]), tonumber(f[9]), tonumber(f[10])
local deadline = created + max_ms
if math.min(last + timeout * 1000, deadline) <= now then return false end
if now > last then
  local expires = math.min(now + timeout * 1000, deadline)
  redis.call('HSET', key, 'l', ARGV[1])
  redis.call('PEXPIREAT', key, expires)
  redis.call('PEXPIREAT', KEYS[1], expires)
  f[10] = ARGV[1]
  -- Other nodes' copies learn of activity at most once a second: enough for listing.
  if now - tonumber(f[12] or 0) >= 1000 then
    redis.call('HSET', key, 'p', ARGV[1])
    redis.call('PUBLISH', ARGV[4], cjson.encode({op = 't', id = id, l = ARGV[1]}))
  end
end
return {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]}
