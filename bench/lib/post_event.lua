-- wrk: POST /v1/events with the service token in the environment.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
local etype = os.getenv("BENCH_TYPE") or "bench.ingest"
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"type":"%s","source":"/bench","data":{"n":%d}}', etype, n))
end
