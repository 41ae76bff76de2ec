-- GET one listing page with an administrator's token: PATH (e.g. /sessions?limit=100) and
-- TOKEN from the environment.
local path = os.getenv("LIST_PATH") or "/sessions?limit=100"
local token = os.getenv("TOKEN")

function request()
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end
