-- wrk: POST /v1/memories/search {"query": 1 to 3 words, "limit": 10} with BENCH_TOKEN. The words are drawn
-- from the benchmark's vocabulary uniformly (most are rare), or with BENCH_ZIPF=1 by their Zipf weight (common
-- words, which match most memories: the hard case).
local C = dofile(os.getenv("BENCH_LIB") .. "/memory_common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local pick

function init(args)
  C.seed()
  local words = C.load_vocab()
  pick = os.getenv("BENCH_ZIPF") == "1" and C.zipf_picker(words, 1.0) or C.uniform_picker(words)
end

function request()
  return wrk.format(nil, nil, nil,
    string.format('{"query":"%s","limit":10}', C.words(pick, math.random(1, 3))))
end
