-- wrk: POST /v1/events (post_event.lua's body) with BENCH_TOKEN, each thread to one of the servers in
-- BENCH_ADDRS ("127.0.0.1:PORT,127.0.0.1:PORT"; thread i to the (i mod n)-th), so one wrk splits its
-- connections evenly over several keel processes. Ends with memory_common.lua's BENCH line.
local C = dofile(os.getenv("BENCH_LIB") .. "/memory_common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local addrs = {}
for host, port in string.gmatch(os.getenv("BENCH_ADDRS") or "", "([^,:]+):(%d+)") do
  addrs[#addrs + 1] = wrk.lookup(host, port)[1]
end

local threads = 0
function setup(thread)  -- replaces memory_common.lua's, keeping its thread ids
  thread:set("id", threads)
  if #addrs > 0 then thread.addr = addrs[threads % #addrs + 1] end
  threads = threads + 1
end

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"type":"bench.ingest","source":"/bench","data":{"n":%d}}', n))
end
