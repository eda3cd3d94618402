-- wrk: each request redeems the next unused authorization code at the token
-- endpoint, as a relying party does after a sign-in. Reads CODES_FILE (one code
-- per line), TOKEN_PATH, BASIC (the Authorization header), REDIRECT_URI and
-- VERIFIER from the environment; thread n of WRK_THREADS takes every n-th code.
local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(_)
  codes = {}
  local total = tonumber(os.getenv("WRK_THREADS"))
  local n = 0
  for line in io.lines(os.getenv("CODES_FILE")) do
    if n % total == id then
      codes[#codes + 1] = line
    end
    n = n + 1
  end
  next_code = 0
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = os.getenv("BASIC"),
  }
  tail = "&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&code_verifier=" .. os.getenv("VERIFIER")
end

function request()
  next_code = next_code + 1
  local code = codes[next_code] or "exhausted"
  return wrk.format("POST", os.getenv("TOKEN_PATH"), headers,
    "grant_type=authorization_code&code=" .. code .. tail)
end
