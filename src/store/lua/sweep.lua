-- Remove user-index entries whose sessions have expired (their keys are gone), for one SCAN
-- step over the user sets. ARGV: prefix, cursor, count. Returns the next cursor and the number
-- of entries removed.
local prefix = ARGV[1]
local step = redis.call('SCAN', ARGV[2], 'MATCH', prefix .. 'u:*', 'COUNT', ARGV[3])
local removed = 0
for _, set in ipairs(step[2]) do
  for _, id in ipairs(redis.call('SMEMBERS', set)) do
    if redis.call('EXISTS', prefix .. 's:' .. id) == 0 then
      redis.call('SREM', set, id)
      removed = removed + 1
    end
  end
end
return {step[1], removed}
