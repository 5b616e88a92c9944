-- wrk script for bench/ingest/run: POST signed WhatsApp webhooks, each with its
-- own message id (wamid.BENCH<n>) and X-Hub-Signature-256, made by gen.py.
--   wrk ... -s ingest.lua URL -- DIR FIRST LAST THREADS [cycle]
-- Requests FIRST..LAST-1 are split into one disjoint slice per thread (THREADS = wrk -t); a
-- thread that runs out of its slice stops (ids are never reused). done()
-- prints the exact status counts of all threads.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

function init(args)
  local dir, first, last = args[1], tonumber(args[2]), tonumber(args[3])
  local nthreads = tonumber(args[4])
  cycle = args[5] == "cycle" -- reuse ids (only for targets that do not deduplicate, e.g. nginx)
  prefix = slurp(dir .. "/prefix")
  suffix = slurp(dir .. "/suffix")
  local per = math.floor((last - first) / nthreads)
  lo = first + tid * per
  count = per
  local f = assert(io.open(dir .. "/sigs", "rb"))
  f:seek("set", lo * 65)
  sigs = f:read(per * 65)
  f:close()
  i = 0
  statuses = {}
  exhausted = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  if i >= count and cycle then i = 0 end
  if i >= count then
    -- out of ids: stop the thread; until the loop ends, send fillers that
    -- carry no event (a GET of an unknown path, 404, counted apart)
    if exhausted == 0 then exhausted = 1; wrk.thread:stop() end
    return wrk.format("GET", "/__bench_exhausted", {}, "")
  end
  local n = lo + i
  local body = prefix .. string.format("%d", n) .. suffix
  local sig = string.sub(sigs, i * 65 + 1, i * 65 + 64)
  i = i + 1
  return wrk.format(nil, nil, {["X-Hub-Signature-256"] = "sha256=" .. sig}, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total, ok, out = {}, 0, {}
  local ex = 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, n in pairs(s) do total[code] = (total[code] or 0) + n end
    ex = ex + (t:get("exhausted") or 0)
  end
  local all = 0
  for code, n in pairs(total) do
    all = all + n
    if code >= 200 and code < 300 then ok = ok + n end
    if code == 404 and ex > 0 then all = all - n end
    table.insert(out, code .. "=" .. n)
  end
  table.sort(out)
  io.write(string.format("STATUS 2xx=%d non2xx=%d total=%d exhausted_threads=%d codes=%s\n",
    ok, all - ok, all, ex, table.concat(out, ",")))
end
