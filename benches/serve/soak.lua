-- wrk: the soak's mix, in turn: valid Vault, Conjur and Strongbox logins, a forged signature, a
-- wrong audience, and a token signed by the key the rotation adds (refused before it, allowed
-- after). Counts statuses, and the issued tokens by endpoint (to compare with the store).
local dir = os.getenv("BODIES")
local function read(name)
  local f = assert(io.open(dir .. "/" .. name, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local requests = {}
function init(args)
  local json = { ["Content-Type"] = "application/json" }
  local form = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  requests = {
    wrk.format("POST", "/v1/auth/ci/login", json, read("vault-valid.json")),
    wrk.format("POST", "/authn-jwt/ci/load/authenticate", form, read("conjur-valid.form")),
    wrk.format("POST", "/v1/auth/ci/login", json, read("vault-forged.json")),
    wrk.format("POST", "/v1/jwt-login", json, read("strongbox-valid.json")),
    wrk.format("POST", "/v1/auth/ci/login", json, read("vault-wrong-audience.json")),
    wrk.format("POST", "/v1/auth/ci/login", json, read("vault-rotated.json")),
  }
end

local i = 0
function request()
  i = i % #requests + 1
  return requests[i]
end

counts = {}
issued = { vault = 0, strongbox = 0, conjur = 0 }
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 200 then
    if body:find('"client_token"', 1, true) then issued.vault = issued.vault + 1
    elseif body:find('"expires-in"', 1, true) then issued.strongbox = issued.strongbox + 1
    elseif body:find('"protected"', 1, true) then issued.conjur = issued.conjur + 1 end
  end
end

local threads = {}
function setup(thread) table.insert(threads, thread) end

function done(summary, latency, requests)
  local total, tokens = {}, { vault = 0, strongbox = 0, conjur = 0 }
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("counts")) do total[status] = (total[status] or 0) + n end
    for k, n in pairs(t:get("issued")) do tokens[k] = tokens[k] + n end
  end
  local parts = {}
  for status, n in pairs(total) do table.insert(parts, string.format('"%d": %d', status, n)) end
  io.write(string.format('STATUS {%s}\n', table.concat(parts, ", ")))
  io.write(string.format('ISSUED {"vault": %d, "strongbox": %d, "conjur": %d}\n', tokens.vault, tokens.strongbox, tokens.conjur))
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
