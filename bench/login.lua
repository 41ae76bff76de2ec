-- POST /sessions. KEY is the service key; LIMIT, if set, stops each thread after that many
-- created sessions; ORGS spreads the users over that many organisations.
-- NAMES=shared gives names that share a long prefix, as real directories do ("User 1-0012345");
-- NAMES=distinct (the default) names that differ early. USERS, if set, makes the logins come
-- from that many users per thread, each logging in many times (the server must allow it).
local key = os.getenv("KEY") or "bench-service-key-0123456789abcdefgh"
local limit = tonumber(os.getenv("LIMIT") or "0")
local orgs = tonumber(os.getenv("ORGS") or "20")
local shared = os.getenv("NAMES") == "shared"
local users = tonumber(os.getenv("USERS") or "0")
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
  local user = n
  if users > 0 then
    user = (n * 7919) % users
  end
  local name
  if shared then
    name = string.format("User 1-%07d", (user * 7 + id) % 10000000)
  else
    name = string.format("User %d %d", user, id)
  end
  local body = string.format(
    '{"user_id":"%s-%d-%d","name":"%s","organisation":"Org %d","ip_address":"10.%d.%d.%d","server_name":"APP-%d","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench"}',
    run, id, user, name, user % orgs, id, math.floor(user / 256) % 256, user % 256, n % 4)
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
