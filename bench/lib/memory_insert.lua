-- wrk: POST /v1/memories with BENCH_TOKEN. Content is words of the benchmark's vocabulary (memory_common.lua),
-- Zipf-weighted: by default 100 to 200 bytes with a tag or two and small metadata; with BENCH_WORDS="8-30",
-- that many words and no tags. BENCH_NAMESPACE sets the namespace; BENCH_COUNT makes it a counted load.
local C = dofile(os.getenv("BENCH_LIB") .. "/memory_common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")

local TAGS = { "work", "home", "idea", "todo", "travel", "health", "family", "reading", "project", "meeting" }
local SOURCES = { "chat", "note", "email", "import" }

local pick, min_words, max_words, ns, n
local id = 0

function init(args)
  C.seed()
  pick = C.zipf_picker(C.load_vocab(), 1.0)
  local spec = os.getenv("BENCH_WORDS")
  if spec and spec ~= "" then
    local a, b = spec:match("^(%d+)-(%d+)$")
    min_words, max_words = tonumber(a), tonumber(b)
  end
  ns = os.getenv("BENCH_NAMESPACE")
  id = C.thread_id()
  n = 0
  local quota = C.quota()
  if quota then C.counted(make, quota) else request = make end
end

function make()
  n = n + 1
  local parts = {}
  if min_words then
    parts[1] = string.format('{"content":"%s"', C.words(pick, math.random(min_words, max_words)))
  else
    local t1 = TAGS[math.random(#TAGS)]
    local tags = '"' .. t1 .. '"'
    if math.random() < 0.5 then
      local t2 = TAGS[math.random(#TAGS)]
      if t2 ~= t1 then tags = tags .. ',"' .. t2 .. '"' end
    end
    parts[1] = string.format('{"content":"%s","tags":[%s],"metadata":{"source":"%s","seq":%d,"thread":%d}',
      C.text_of_bytes(pick, math.random(100, 200)), tags, SOURCES[math.random(#SOURCES)], n, id)
  end
  if ns and ns ~= "" then parts[#parts + 1] = string.format(',"namespace":"%s"', ns) end
  parts[#parts + 1] = "}"
  return wrk.format(nil, nil, nil, table.concat(parts))
end
