#!/usr/bin/env bash
# The memory module on SQLite, on this machine, in one run, each figure printed next to its bar:
#   1. insert throughput of POST /v1/memories (wrk, 64 connections) over raw SQLite's rate of one memory per
#      transaction on the same schema and durability (bench/lib/memory_raw.cpp, compiled here);
#   2. full-text search p50/p99 over 100,000 memories of one user (Zipf-distributed vocabulary), one connection;
#   3. vector search over 100,000 x 384 clustered vectors: HNSW graph build time, recall@10 against exact search
#      (numpy), p50/p99 on one connection.
# Only 127.0.0.1 is targeted; every load is bounded in time or count; all files live in a temporary directory
# removed on exit, and keel is stopped on exit. The gateway's per-user rate limit and the free plan's quota are
# lifted for the run, so the gateway's insert rate is its own and not the limits'.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
PY=/usr/bin/python3
DURATION=${DURATION:-5}                 # seconds of each insert-throughput run
ROUNDS=${ROUNDS:-3}                     # keel insert runs, between raw SQLite runs
SEARCH_DURATION=${SEARCH_DURATION:-10}  # seconds of each search-latency run
DOCS=${DOCS:-100000}                    # memories for the full-text search
VOCAB=${VOCAB:-5000}                    # words in the vocabulary
VECTORS=${VECTORS:-100000}
DIMS=${DIMS:-384}
CLUSTERS=${CLUSTERS:-200}
NOISE=${NOISE:-0.75}   # per-dimension standard deviation around a cluster center (centers are N(0, 1))
QUERIES=${QUERIES:-500}
SEED=${SEED:-42}
SYNC=${KEEL_SQLITE_SYNCHRONOUS:-NORMAL}  # the durability setting, keel's and the raw baseline's
LOAD_LIMIT=${LOAD_LIMIT:-240}  # seconds a bulk load may take at most
BUILD_WAIT=${BUILD_WAIT:-240}  # seconds to wait at most for the HNSW graph
for tool in wrk g++ sqlite3 curl; do
  command -v $tool >/dev/null || { echo "missing $tool: scripts/setup.sh --bench" >&2; exit 1; }
done
[ -x "$KEEL" ] || { echo "no keel binary at $KEEL (build it, or set KEEL_BIN)" >&2; exit 1; }
$PY -c 'import numpy' 2>/dev/null || { echo "missing numpy for $PY: scripts/setup.sh --bench" >&2; exit 1; }

work=$(mktemp -d)
pid="" wrkpid="" genpid=""
cleanup() {
  for p in $wrkpid $genpid $pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export BENCH_LIB=$PWD/bench/lib BENCH_VOCAB=$work/vocab.txt
$PY bench/lib/memory_vocab.py "$BENCH_VOCAB" "$VOCAB"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
# field FILE NAME: a value of the BENCH line that bench/lib/memory_common.lua's done() prints.
field() { grep -o "^BENCH .*" "$1" | grep -o " $2=[^ ]*" | cut -d= -f2; }
bar() {  # VALUE OP LIMIT -> "met" or "NOT met"
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {ok = (op == ">=") ? v >= l : v <= l; print ok ? "met" : "NOT met"}'
}

base=$($PY bench/lib/free_base.py 10)
KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn KEEL_SQLITE_SYNCHRONOUS=$SYNC KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 \
  KEEL_GATEWAY_USER_RATE=0 "$KEEL" serve --port-base "$base" --data-dir "$work/data" >"$work/keel.log" 2>&1 &
pid=$!
gw="http://127.0.0.1:$base"
auth="http://127.0.0.1:$((base + 1))"
mem="http://127.0.0.1:$((base + 2))"
up=""
for _ in $(seq 200); do
  if curl -sf -o /dev/null "$mem/health"; then up=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$up" ]; then
  echo "keel did not start (port base $base); its log:" >&2
  tail -n 20 "$work/keel.log" >&2
  exit 1
fi
db=$work/data/keel.db

# register EMAIL: a new user; sets BENCH_TOKEN (exported, for wrk's scripts) and uid.
register() {
  local out
  out=$(curl -sf -X POST "$auth/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"correct horse battery\"}" |
    $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["access_token"], d["user"]["id"])') ||
    { echo "registering $1 failed" >&2; exit 1; }
  read -r BENCH_TOKEN uid <<<"$out"
  export BENCH_TOKEN
}
# run_wrk OUT ARGS...: wrk, its output in OUT, which must end with the BENCH line.
run_wrk() {
  local out=$1
  shift
  wrk "$@" >"$out" 2>&1 || true
  grep -q '^BENCH ' "$out" || { echo "wrk $* failed:" >&2; cat "$out" >&2; exit 1; }
}

# counted_load URL SCRIPT OUT: wrk (2 threads, 64 connections) until every thread has had its share answered
# (bench/lib/memory_common.lua), at most LOAD_LIMIT seconds.
counted_load() {
  rm -rf "$work/done" && mkdir "$work/done"
  BENCH_DONE_DIR=$work/done BENCH_THREADS=2 wrk -t2 -c64 -d"${LOAD_LIMIT}s" -s "$2" "$1" >"$3" 2>&1 &
  wrkpid=$!
  while [ "$(ls "$work/done" | wc -l)" -lt 2 ] && kill -0 "$wrkpid" 2>/dev/null; do sleep 0.2; done
  kill -INT "$wrkpid" 2>/dev/null || true
  wait "$wrkpid" || true
  wrkpid=""
  grep -q '^BENCH ' "$3" || { echo "the load with $2 failed:" >&2; cat "$3" >&2; exit 1; }
}

# --- 1. insert throughput -------------------------------------------------------------------------------
echo "== 1. insert throughput: keel POST /v1/memories vs raw SQLite, one memory per transaction (WAL, synchronous=$SYNC)"
register insert@example.com
uid_a=$uid
g++ -O2 -std=c++20 -o "$work/memory_raw" bench/lib/memory_raw.cpp -lsqlite3
raw_run() {  # N -> rate
  "$KEEL" migrate --data-dir "$work/raw$1" >/dev/null
  "$work/memory_raw" "$work/raw$1/keel.db" "$BENCH_VOCAB" "$DURATION" "$SYNC" | grep -o 'rate=[0-9.]*' | cut -d= -f2
}
# Rounds of raw, keel, raw, keel, ..., raw (this machine's speed drifts): each keel run against the mean of the
# raw runs either side of it, and the median of those ratios.
raws=("$(raw_run 0)") ratios=()
answered=0 non2xx=0 socket_errors=0
for r in $(seq "$ROUNDS"); do
  run_wrk "$work/insert-$r.out" -t2 -c64 -d"${DURATION}s" -s bench/lib/memory_insert.lua "$mem/v1/memories"
  raws+=("$(raw_run "$r")")
  out=$work/insert-$r.out
  answered=$((answered + $(field "$out" requests)))
  non2xx=$((non2xx + $(field "$out" non2xx)))
  socket_errors=$((socket_errors + $(field "$out" socket_errors)))
  ratio=$(awk -v k="$(field "$out" rps)" -v a="${raws[r - 1]}" -v b="${raws[r]}" 'BEGIN {printf "%.3f", k / ((a + b) / 2)}')
  ratios+=("$ratio")
  printf 'round %d: raw %.0f, keel %.0f (p50 %s ms, p99 %s ms), raw %.0f inserts/s: keel / raw %s\n' "$r" "${raws[r - 1]}" \
    "$(field "$out" rps)" "$(field "$out" p50_ms)" "$(field "$out" p99_ms)" "${raws[r]}" "$ratio"
done
stored=$(sqlite3 "$db" "SELECT COUNT(*) FROM memories WHERE user_id = '$uid_a'")
echo "keel: memory port, wrk 2 threads, 64 connections, ${DURATION}s a round; 100-200 bytes of words, 1-2 tags, metadata;" \
  "$non2xx non-2xx, $socket_errors socket errors; $stored rows stored for $answered answered"
echo "raw: bench/lib/memory_raw.cpp, 1 thread, BEGIN; INSERT memory; INSERT tags; COMMIT, the schema's FTS5 trigger firing"
ratio=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR] = $1} END {printf "%.3f", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
printf 'keel / raw, median of %d rounds: %s (bar: >= 1.0: %s)\n' "$ROUNDS" "$ratio" "$(bar "$ratio" ">=" 1.0)"
summary=("insert throughput keel / raw SQLite: $ratio (bar >= 1.0: $(bar "$ratio" ">=" 1.0))")
run_wrk "$work/insert-gw.out" -t2 -c64 -d"${DURATION}s" -s bench/lib/memory_insert.lua "$gw/v1/memories"
printf 'keel through the gateway port (its rate limit and quota lifted), %ss: %.0f inserts/s (p50 %s ms, p99 %s ms), %s non-2xx\n' \
  "$DURATION" "$(field "$work/insert-gw.out" rps)" "$(field "$work/insert-gw.out" p50_ms)" "$(field "$work/insert-gw.out" p99_ms)" \
  "$(field "$work/insert-gw.out" non2xx)"

# --- 2. full-text search --------------------------------------------------------------------------------
echo
echo "== 2. full-text search over $DOCS memories of one user ($VOCAB-word vocabulary, Zipf-distributed, 8-30 words a memory)"
# The vectors for section 3 are generated meanwhile (the load is bound by keel's writer), never during a measurement.
$PY bench/lib/memory_vectors.py gen "$work" "$VECTORS" "$DIMS" "$CLUSTERS" "$NOISE" "$QUERIES" 2 "$SEED" >"$work/gen.out" 2>&1 &
genpid=$!
register search@example.com
uid_b=$uid
start=$(now)
BENCH_COUNT=$DOCS BENCH_WORDS=8-30 counted_load "$mem/v1/memories" bench/lib/memory_insert.lua "$work/load.out"
took=$(since "$start")
loaded=$(sqlite3 "$db" "SELECT COUNT(*) FROM memories WHERE user_id = '$uid_b'")
printf 'loaded %s memories in %s s (%.0f/s, 64 connections), %s non-2xx\n' "$loaded" "$took" \
  "$(awk -v n="$loaded" -v t="$took" 'BEGIN {print n / t}')" "$(field "$work/load.out" non2xx)"
scope="u${uid_b//-/}0"
holding() { sqlite3 "$db" "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH 'scope : \"$scope\" AND content : \"$1\"'"; }
top=$(sed -n 1p "$BENCH_VOCAB") mid=$(sed -n "$((VOCAB / 2))p" "$BENCH_VOCAB")
printf 'the most common word, "%s", is in %s of them; the median word, "%s", in %s\n' "$top" "$(holding "$top")" "$mid" "$(holding "$mid")"
wait "$genpid" || { echo "generating the vectors failed:" >&2; cat "$work/gen.out" >&2; exit 1; }
genpid=""
run_wrk "$work/fts.out" -t1 -c1 -d"${SEARCH_DURATION}s" -s bench/lib/memory_search.lua "$mem/v1/memories/search"
p99=$(field "$work/fts.out" p99_ms)
printf 'uniform words (1-3 a query, mostly rare), 1 connection, %ss: p50 %s ms, p99 %s ms, %.0f req/s, %s non-2xx (bar: p99 <= 5 ms: %s)\n' \
  "$SEARCH_DURATION" "$(field "$work/fts.out" p50_ms)" "$p99" "$(field "$work/fts.out" rps)" "$(field "$work/fts.out" non2xx)" "$(bar "$p99" "<=" 5)"
summary+=("full-text search p99 at $loaded memories: $p99 ms (bar <= 5 ms: $(bar "$p99" "<=" 5))")
BENCH_ZIPF=1 run_wrk "$work/fts-zipf.out" -t1 -c1 -d"${SEARCH_DURATION}s" -s bench/lib/memory_search.lua "$mem/v1/memories/search"
printf 'Zipf-weighted words (common ones, the harder case; no bar), 1 connection, %ss: p50 %s ms, p99 %s ms, %.0f req/s, %s non-2xx\n' \
  "$SEARCH_DURATION" "$(field "$work/fts-zipf.out" p50_ms)" "$(field "$work/fts-zipf.out" p99_ms)" "$(field "$work/fts-zipf.out" rps)" "$(field "$work/fts-zipf.out" non2xx)"

# --- 3. vector search -----------------------------------------------------------------------------------
echo
echo "== 3. vector search over $VECTORS x $DIMS float32 vectors, one namespace"
read -r near rand <"$work/gen.out"
echo "synthetic stand-in for embeddings: $CLUSTERS Gaussian cluster centers, N(0, $NOISE^2) noise per dimension, seed $SEED (mean cosine to the nearest of 2000 sampled vectors $near, to a random one $rand); $QUERIES queries drawn the same way, not from the data"
register vectors@example.com
uid_c=$uid
start=$(now)
BENCH_BODIES=$work/vec-bodies counted_load "$mem/v1/memories" bench/lib/memory_bodies.lua "$work/vload.out"
took=$(since "$start")
loaded=$(sqlite3 "$db" "SELECT COUNT(*) FROM memories WHERE user_id = '$uid_c' AND namespace = 'vec' AND embedding_dims = $DIMS")
printf 'loaded %s vectors in %s s (%.0f/s, 64 connections), %s non-2xx\n' "$loaded" "$took" \
  "$(awk -v n="$loaded" -v t="$took" 'BEGIN {print n / t}')" "$(field "$work/vload.out" non2xx)"
rm -f "$work"/vec-bodies.*

# The index learns of the vectors on a search (or at start-up); the graph is then built in the background.
metric() { curl -sf "$mem/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
start=$(now)
first=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 120 -X POST "$mem/v1/memories/search" \
  -H "Authorization: Bearer $BENCH_TOKEN" -H 'Content-Type: application/json' -d "$(head -n 1 "$work/vec-queries")")
built=""
while awk -v a="$start" -v b="$(now)" -v l="$BUILD_WAIT" 'BEGIN {exit !(b - a < l)}'; do
  vectors=$(metric keel_memory_vectors) pending=$(metric keel_memory_vectors_pending)
  if [ "${vectors:-0}" -ge "$loaded" ] && [ "${pending:-1}" = 0 ]; then built=1; break; fi
  sleep 0.25
done
if [ -n "$built" ]; then
  printf 'HNSW graph: built %s s after the first search (that search, which loads the vectors from SQLite: HTTP %s in %s s)\n' \
    "$(since "$start")" "${first% *}" "$(printf '%.1f' "${first#* }")"
else
  printf 'HNSW graph: NOT built within %s s (vectors %s, pending %s); measuring anyway\n' "$BUILD_WAIT" "${vectors:-?}" "${pending:-?}"
fi
$PY bench/lib/memory_vectors.py recall "$work" "$mem/v1/memories/search" "$BENCH_TOKEN" "$db" "$uid_c" >"$work/recall.out"
rline=$(cat "$work/recall.out")
val() { printf '%s\n' "$rline" | grep -o "$1=[^ ]*" | cut -d= -f2; }
summary+=("vector recall@10: $(val recall) (bar >= 0.95: $(bar "$(val recall)" ">=" 0.95))")
printf 'recall@10 against exact cosine top-10 (numpy), %s queries: %s (bar: >= 0.95: %s); %s non-200, %s with fewer than 10 hits\n' \
  "$(val queries)" "$(val recall)" "$(bar "$(val recall)" ">=" 0.95)" "$(val non200)" "$(val short)"
printf 'latency, 1 keep-alive connection, client-side (python http.client, the same %s queries in turn): p50 %s ms, p99 %s ms, max %s ms\n' \
  "$(val queries)" "$(val p50_ms)" "$(val p99_ms)" "$(val max_ms)"
BENCH_LOOP=$work/vec-queries run_wrk "$work/vsearch.out" -t1 -c1 -d"${SEARCH_DURATION}s" -s bench/lib/memory_bodies.lua "$mem/v1/memories/search"
p99=$(field "$work/vsearch.out" p99_ms)
printf 'latency, wrk 1 connection, %ss cycling through the queries: p50 %s ms, p99 %s ms, %.0f req/s, %s non-2xx (bar: p99 <= 10 ms: %s)\n' \
  "$SEARCH_DURATION" "$(field "$work/vsearch.out" p50_ms)" "$p99" "$(field "$work/vsearch.out" rps)" "$(field "$work/vsearch.out" non2xx)" "$(bar "$p99" "<=" 10)"
summary+=("vector search p99 (wrk, 1 connection): $p99 ms (bar <= 10 ms: $(bar "$p99" "<=" 10))")

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "keel errors logged during the run: $(grep -c '"level":"error"' "$work/keel.log" || true)"
