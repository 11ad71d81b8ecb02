-- wrk: GET with BENCH_TOKEN as the bearer token. With BENCH_IDS (a file, one memory id a line), each request
-- asks for /v1/memories/<a random one of them>; without it, the URL's path. Ends with memory_common.lua's
-- BENCH line (requests, rps, latency percentiles, non-2xx, socket errors).
local C = dofile(os.getenv("BENCH_LIB") .. "/memory_common.lua")
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local ids = {}

function init(args)
  C.seed()
  local path = os.getenv("BENCH_IDS")
  if path and path ~= "" then
    for line in io.lines(path) do
      if line ~= "" then ids[#ids + 1] = line end
    end
  end
end

function request()
  if #ids == 0 then return wrk.format() end
  return wrk.format(nil, "/v1/memories/" .. ids[math.random(#ids)])
end
