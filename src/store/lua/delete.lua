-- End the live sessions among the ids that are in scope.
-- ARGV: now, max lifetime ms, prefix, channel, organisation ("" = every organisation), ids...
-- Returns, per session ended, its id and the fields u n o i v r a t c l d.
local now, max_ms, prefix, channel, scope = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local ended = {}
for n = 6, #ARGV do
  local id = ARGV[n]
  local key = prefix .. 's:' .. id
  local f = redis.call('HMGET', key, 'u', 'n', 'o', 'i', 'v', 'r', 'a', 't', 'c', 'l', 'd')
  if f[1] and (scope == '' or f[3] == scope)
      and math.min(tonumber(f[10]) + tonumber(f[8]) * 1000, tonumber(f[9]) + max_ms) > now then
    redis.call('DEL', key, prefix .. 't:' .. f[11])
    redis.call('SREM', prefix .. 'u:' .. f[1], id)
    redis.call('PUBLISH', channel, cjson.encode({op = 'd', id = id}))
    table.insert(ended, id)
    for i = 1, 11 do table.insert(ended, f[i]) end
  end
end
return ended
