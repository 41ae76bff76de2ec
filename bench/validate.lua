-- GET /sessions/current over many distinct tokens, one per line in the file named by
-- TOKENS (default target/bench/tokens.txt); each connection walks them round-robin. With
-- TARGET=/healthz it sends the very same requests to the health check instead: the ceiling,
-- measured with the same work on wrk's side.
local tokens = {}
local path = os.getenv("TOKENS") or "target/bench/tokens.txt"
local target = os.getenv("TARGET") or "/sessions/current"
for line in io.lines(path) do
  tokens[#tokens + 1] = line
end
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 997)
end

function init(args)
  next_token = offset or 0
end

function request()
  next_token = next_token + 1
  local token = tokens[(next_token % #tokens) + 1]
  return wrk.format("GET", target, { ["Authorization"] = "Bearer " .. token })
end
