-- Shared by the memory benchmark's wrk scripts (loaded with dofile): the vocabulary (BENCH_VOCAB, one word a
-- line, most frequent first), Zipf and uniform word pickers, text of n words or of a byte length, a per-thread
-- counted quota (BENCH_COUNT over BENCH_THREADS threads: once a thread has sent its share it only asks for
-- /health, and it drops a file in BENCH_DONE_DIR when all its share has been answered, so the caller can stop
-- wrk early), and a done() that prints one machine-readable line:
--   BENCH requests=N rps=R p50_ms=A p90_ms=B p99_ms=C max_ms=D non2xx=E socket_errors=F
local M = {}

function M.env_number(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return tonumber(v)
end

function M.load_vocab()
  local path = os.getenv("BENCH_VOCAB") or error("BENCH_VOCAB is not set")
  local words = {}
  for line in io.lines(path) do
    if line ~= "" then words[#words + 1] = line end
  end
  return words
end

-- Zipf's law with exponent s over the words' ranks: cumulative weights, searched by bisection.
function M.zipf_picker(words, s)
  local cdf, total = {}, 0
  for r = 1, #words do
    total = total + 1 / (r ^ s)
    cdf[r] = total
  end
  return function()
    local x = math.random() * total
    local lo, hi = 1, #words
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < x then lo = mid + 1 else hi = mid end
    end
    return words[lo]
  end
end

function M.uniform_picker(words)
  return function() return words[math.random(#words)] end
end

function M.words(pick, n)
  local t = {}
  for i = 1, n do t[i] = pick() end
  return table.concat(t, " ")
end

-- Words until the text is at least `bytes` long.
function M.text_of_bytes(pick, bytes)
  local t, len = {}, -1
  while len < bytes do
    local w = pick()
    t[#t + 1] = w
    len = len + 1 + #w
  end
  return table.concat(t, " ")
end

-- Per-thread ids for seeding and quotas: setup() runs in the main state once per thread.
local next_id = 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
end

function M.thread_id()
  return tonumber(wrk.thread:get("id")) or 0
end

function M.seed()
  math.randomseed(os.time() * 1000 + M.thread_id() * 7919 + math.floor(os.clock() * 1e6) % 1000)
  for _ = 1, 10 do math.random() end
end

-- The counted mode: returns nil when BENCH_COUNT is not set.
function M.quota()
  local count = M.env_number("BENCH_COUNT", nil)
  if not count then return nil end
  local threads = M.env_number("BENCH_THREADS", 1)
  local id = M.thread_id()
  return math.floor(count * (id + 1) / threads) - math.floor(count * id / threads)
end

-- Wraps request/response for a counted run: make() builds the next real request.
function M.counted(make, quota)
  local calls, sent, answered, flagged = 0, 0, 0, false
  local idle = wrk.format("GET", "/health", {}, nil)
  local function flag()
    if flagged then return end
    flagged = true
    local dir = os.getenv("BENCH_DONE_DIR")
    if dir then
      local f = io.open(dir .. "/thread-" .. M.thread_id(), "w")
      if f then f:write(answered, "\n"); f:close() end
    end
  end
  if quota <= 0 then flag() end
  -- The first call answers /health: on the first thread wrk calls request() once to check it and throws the
  -- result away, which must not use up one of the quota.
  request = function()
    calls = calls + 1
    if calls > 1 and sent < quota then
      sent = sent + 1
      return make()
    end
    return idle
  end
  -- Once the share is sent, the idle /health requests are spaced out so they leave the CPU to the others.
  delay = function()
    if sent >= quota then return 50 end
    return 0
  end
  response = function(status, headers, body)
    if status ~= 200 then  -- everything but the idle /health answers
      answered = answered + 1
      if answered >= quota then flag() end
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d socket_errors=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end

return M
