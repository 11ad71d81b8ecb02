-- wrk: POSTs request bodies prepared beforehand, one JSON body a line, with BENCH_TOKEN.
--   Counted load (BENCH_BODIES=PREFIX): thread i sends each line of PREFIX.i once (BENCH_THREADS threads), then
--   only /health; it drops a file in BENCH_DONE_DIR when all its lines have been answered.
--   Loop (BENCH_LOOP=FILE): every thread cycles through FILE's lines (kept in memory; keep it small).
local C = dofile(os.getenv("BENCH_LIB") .. "/memory_common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

function init(args)
  local loop = os.getenv("BENCH_LOOP")
  if loop and loop ~= "" then
    local bodies = {}
    for line in io.lines(loop) do
      if line ~= "" then bodies[#bodies + 1] = line end
    end
    local i = 0
    request = function()
      i = i % #bodies + 1
      return wrk.format(nil, nil, nil, bodies[i])
    end
    return
  end
  local path = os.getenv("BENCH_BODIES") .. "." .. C.thread_id()
  local count = 0
  for _ in io.lines(path) do count = count + 1 end
  local f = assert(io.open(path, "r"))
  C.counted(function()
    return wrk.format(nil, nil, nil, f:read("*l"))
  end, count)
end
