-- POST /sessions for distinct users. KEY is the service key; LIMIT, if set, stops each thread
-- after that many created sessions (to fill the store to a size); ORGS spreads the users over
-- that many organisations.
local key = os.getenv("KEY") or "bench"
local limit = tonumber(os.getenv("LIMIT") or "0")
local orgs = tonumber(os.getenv("ORGS") or "20")
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
  thread:set("run", os.getenv("RUN") or "r")
end

function init(args)
  n = 0
  created = 0
end

function request()
  n = n + 1
  local body = string.format(
    '{"user_id":"%s-%d-%d","name":"User %d %d","organisation":"Org %d","ip_address":"10.%d.%d.%d","server_name":"APP-%d"}',
    run, id, n, n, id, n % orgs, id, math.floor(n / 256) % 256, n % 256, n % 4)
  return wrk.format("POST", "/sessions", {
    ["X-Service-Key"] = key,
    ["Content-Type"] = "application/json",
  }, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
    if limit > 0 and created >= limit then
      wrk.thread:stop()
    end
  end
end
