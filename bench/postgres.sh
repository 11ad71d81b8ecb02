#!/usr/bin/env bash
# keel on PostgreSQL against PostgreSQL alone ("PostgreSQL at full speed"), on this machine, each figure printed
# next to its bar:
#   on      POST /v1/memories, 64 connections, synchronous_commit=on, / raw pgbench doing the same transaction
#           (bench/lib/pg_insert.sql: the memory row, its tag rows, its keel.memory.created event; 64 clients)
#                                                                                              (bar >= 0.8)
#   off     the same with synchronous_commit=off                                               (bar >= 0.8)
#   get     GET /v1/memories/{id}, 64 connections, / raw pgbench running keel's primary-key select for the
#           same user's rows (bench/lib/pg_get.sql)                                            (bar >= 0.8)
#   search  full-text search p99 through keel at SEARCH_DOCS (20,000) memories of one user, POST
#           /v1/memories/search {"query"}, 1 connection; beside it, raw pgbench's p99 for keel's ts_rank query
#           (bench/lib/pg_search.sql) over the same memories and query words                   (reported)
#   me      GET /v1/auth/me on PostgreSQL / the same on SQLite, 64 connections                 (bar >= 0.5)
#   events  POST /v1/events with a service token, 64 connections split over two keel processes
#           (--services events, one database), / raw pgbench inserting the same event rows
#           (bench/lib/pg_event.sql; 64 clients)                                               (bar >= 0.8)
# Beside raw's 64 clients, unbarred: raw pgbench with as many clients as keel has PostgreSQL connections
# (RAW_POOL, default KEEL_DB_WORKERS or keel's default pool of 8; twice that for the two events processes;
# 0 leaves it out), which shows whether raw's 64 backends on one core are its best; and with RAW_LOCKED=1,
# raw taking the outbox lock keel took before migration 0007 (pg_advisory_xact_lock(7336002) before the event,
# held to COMMIT), on `on`, `off` and `events`.
#
# Method (../shared/DESIGN.md, "Benchmark method"): this machine has 2 cores. PostgreSQL AND keel share core 1
# (keel must run somewhere: a server and its database on one core, against PostgreSQL alone on that core);
# the load, wrk (closed loop, Lua scripts in bench/lib/) or pgbench (-M prepared, one thread), runs on core 0.
# Raw and keel alternate per round (raw keel [extras], raw keel ...), ROUNDS rounds of DURATION s each after a
# WARMUP s run of each; a write run starts after a CHECKPOINT. Each figure is the median of the per-round
# ratios (for search, the median p99 of each side); every round is printed.
# PostgreSQL is a throwaway cluster of our own (scripts/start-postgres.sh --durable: fsync=on,
# full_page_writes=on), one database per section, synchronous_commit set per database with ALTER DATABASE
# ... SET (so keel's connections and pgbench's get the same setting). keel is build/keel (KEEL_BIN overrides,
# copied once so a rebuild meanwhile does not change it), `serve --io-threads 1`, every module (events: two
# processes of --services events) on its own port; requests go to the module's own port (not through the
# gateway), with KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn and the gateway's limits and the free plan's quota
# off. keel's other settings are its defaults (KEEL_* in the environment pass through, e.g. KEEL_DB_WORKERS).
# keel stays up through raw's runs, idle but for its background work (heartbeats; numbering the events raw
# inserts, as it numbers its own, since migration 0007), so both sides end with the same rows.
# Only 127.0.0.1 is targeted; every load is bounded in time; keel, PostgreSQL and all files are removed on exit.
# SECTIONS picks sections (default "on off get search me events"; `get` runs on `off`'s database and loads
# what it lacks). A full run with the defaults takes about ten minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}            # seconds of each measured run
WARMUP=${WARMUP:-1}                # seconds of each side's warm-up run per section
CONNS=${CONNS:-64}                 # wrk connections and pgbench clients of the throughput runs
SECTIONS=${SECTIONS:-on off get search me events}
RAW_POOL=${RAW_POOL:-${KEEL_DB_WORKERS:-8}}  # clients of an extra raw run: keel's PostgreSQL pool (0: none)
RAW_LOCKED=${RAW_LOCKED:-0}        # 1: an extra raw run taking the outbox lock keel took before migration 0007
SEARCH_DOCS=${SEARCH_DOCS:-20000}  # memories of the search user
GET_ROWS=${GET_ROWS:-20000}        # the GET user's memories at least (loaded through keel when fewer)
ROWS=${ROWS:-10000}                # distinct memory bodies in bench.rows (raw inserts)
QUERIES=${QUERIES:-2000}           # distinct full-text queries in bench.queries (raw searches)
VOCAB=${VOCAB:-5000}
SEED=${SEED:-42}
LOAD_LIMIT=${LOAD_LIMIT:-240}      # seconds a bulk load may take at most
PY=/usr/bin/python3
. bench/lib/common.sh  # need_tools bench_init free_port median ...
need_tools wrk taskset curl psql
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/pgbench" ] || { echo "missing pgbench (Debian's postgresql package): scripts/setup.sh" >&2; exit 1; }
for s in $SECTIONS; do
  case $s in on | off | get | search | me | events) ;; *) echo "unknown section '$s' in SECTIONS" >&2; exit 1 ;; esac
done
has() { [[ " $SECTIONS " == *" $1 "* ]]; }

wait_binary
bench_init
pgdir=""
stop_pg() { if [ -n "$pgdir" ]; then scripts/stop-postgres.sh "$pgdir"; fi; }
trap 'cleanup; stop_pg' EXIT  # keel first, then its database
cp "$KEEL" "$work/keel"
KEEL=$work/keel
"$KEEL" version >/dev/null

export BENCH_LIB=$PWD/bench/lib BENCH_VOCAB=$work/vocab.txt
$PY bench/lib/memory_vocab.py "$BENCH_VOCAB" "$VOCAB"
$PY bench/lib/pg_data.py rows "$BENCH_VOCAB" "$ROWS" "$SEED" >"$work/rows.csv"
$PY bench/lib/pg_data.py queries "$BENCH_VOCAB" "$QUERIES" "$SEED" >"$work/queries.csv"
# The whole fleet's master key (keel serve and keel token on one database need the same one).
KEEL_AUTH_MASTER_KEY=$(head -c32 /dev/urandom | base64)
export KEEL_AUTH_MASTER_KEY
TP=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01  # a traceparent, as keel writes one per request

pg_env=$(taskset -c 1 scripts/start-postgres.sh --durable)
pgdir=$(sed -n 's/^KEEL_TEST_PG_DIR=//p' <<<"$pg_env")
pg_url=$(sed -n 's/^KEEL_TEST_PG_URL=//p' <<<"$pg_env")
pg_server=${pg_url%/*}
sql() { "$pgbin/psql" -X -Atq -v ON_ERROR_STOP=1 "$pg_server/$1" -c "$2"; }
echo "PostgreSQL $(sql postgres 'SHOW server_version'): fsync=$(sql postgres 'SHOW fsync')" \
  "full_page_writes=$(sql postgres 'SHOW full_page_writes') shared_buffers=$(sql postgres 'SHOW shared_buffers'), on core 1" \
  "with keel; wrk and pgbench on core 0; $ROUNDS rounds of ${DURATION}s"

# new_db NAME SYNCHRONOUS_COMMIT: a database with the raw side's helpers (bench/lib/pg_setup.sql), before keel
# migrates it.
new_db() {
  sql postgres "CREATE DATABASE $1"
  sql postgres "ALTER DATABASE $1 SET synchronous_commit = $2"
  "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$pg_server/$1" -f bench/lib/pg_setup.sql
  "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$pg_server/$1" -c "\\copy bench.rows FROM '$work/rows.csv' CSV"
  "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 "$pg_server/$1" -c "\\copy bench.queries FROM '$work/queries.csv' CSV"
}

# keel_up NAME OFFSET DATABASE [serve options...]: keel on core 1 (data dir $work/NAME) on ten free ports from
# kbase[NAME] (its modules at their offsets: gateway 0, auth 1, memory 2, events 5), its pid in kpid[NAME];
# returns once the module at OFFSET answers /health/live.
declare -A kpid=() kbase=()
keel_up() {
  local name=$1 db=$3 base port up
  base=$($PY bench/lib/free_base.py 10)
  port=$((base + $2))
  kbase[$name]=$base
  shift 3
  KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn KEEL_GATEWAY_USER_RATE=0 KEEL_GATEWAY_IP_RATE=0 \
    KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 KEEL_AUTH_ACCESS_TTL_SECONDS=86400 \
    taskset -c 1 "$KEEL" serve --io-threads 1 --port-base "$base" --database "$db" --data-dir "$work/$name" "$@" \
    >>"$work/keel-$name.log" 2>&1 &
  kpid[$name]=$!
  pids+=($!)
  up=""
  for _ in $(seq 400); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health/live")" = 200 ]; then
      up=1
      break
    fi
    kill -0 "${kpid[$name]}" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$up" ]; then
    echo "keel $name did not start (port base $base); its log:" >&2
    tail -n 20 "$work/keel-$name.log" >&2
    exit 1
  fi
}
keel_down() {  # keel_down NAME: stops it and waits for it
  local p=${kpid[$1]} i
  kill "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  for i in "${!pids[@]}"; do [ "${pids[$i]}" = "$p" ] && unset 'pids[i]'; done
  unset 'kpid[$1]'
}
wait_port() {  # wait_port URL: until it answers 2xx
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "no answer from $1" >&2
  exit 1
}

# register AUTH_URL EMAIL: a new user; sets BENCH_TOKEN (exported, for wrk's scripts) and uid.
register() {
  local out
  out=$(curl -sf -X POST "$1/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$2\",\"password\":\"correct horse battery\"}" |
    $PY -c 'import json,sys; d=json.load(sys.stdin); print(d["access_token"], d["user"]["id"])') ||
    { echo "registering $2 failed" >&2; exit 1; }
  read -r BENCH_TOKEN uid <<<"$out"
  export BENCH_TOKEN
}

# field FILE NAME: a value of the BENCH line that bench/lib/memory_common.lua's done() prints.
field() { grep -o "^BENCH .*" "$1" | grep -o " $2=[^ ]*" | cut -d= -f2; }
bar() {  # VALUE OP LIMIT -> "met" or "NOT met"
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {ok = (op == ">=") ? v >= l : v <= l; print ok ? "met" : "NOT met"}'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}'; }
# keel_run SECONDS CONNECTIONS SCRIPT URL: closed-loop wrk on core 0 (2 threads; 1 for one connection);
# prints "RPS P50_MS P99_MS"; a run with non-2xx answers or socket errors is reported and counted ($work/bad).
keel_run() {
  local out t=2
  out=$(mktemp -p "$work")  # wrk report
  [ "$2" -lt 2 ] && t=1
  taskset -c 0 wrk -t"$t" -c"$2" -d"$1s" -s "$3" "$4" >"$out" 2>&1 || true
  grep -q '^BENCH ' "$out" || { echo "wrk $3 $4 failed:" >&2; cat "$out" >&2; exit 1; }
  if [ "$(field "$out" non2xx)" != 0 ] || [ "$(field "$out" socket_errors)" != 0 ]; then
    echo "  ($4: $(field "$out" non2xx) non-2xx answers, $(field "$out" socket_errors) socket errors)" >&2
    echo "$4" >>"$work/bad"
  fi
  echo "$(field "$out" rps) $(field "$out" p50_ms) $(field "$out" p99_ms)"
}
# raw_run SECONDS CLIENTS DATABASE SCRIPT [-D VAR=VALUE...]: pgbench -M prepared, one thread, on core 0;
# prints "TPS P50_MS P99_MS": with RAW_LATENCY=1 the percentiles of its per-transaction log (-l), else its
# average latency twice. A run with failed transactions stops the benchmark.
raw_run() {
  local secs=$1 clients=$2 db=$3 script=$4 out tps lat failed
  shift 4
  out=$(mktemp -p "$work")  # pgbench report; its -l logs go in $out.log/
  local -a log=()
  [ "${RAW_LATENCY:-0}" = 1 ] && log=(-l)
  mkdir -p "$out.log"
  if ! (cd "$out.log" && taskset -c 0 "$pgbin/pgbench" -n -M prepared -j 1 -c "$clients" -T "$secs" "${log[@]}" \
    -f "$BENCH_LIB/$script" "$@" "$pg_server/$db") >"$out" 2>&1; then
    echo "pgbench $script on $db failed:" >&2
    tail -n 20 "$out" >&2
    exit 1
  fi
  tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' "$out")
  lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$out")
  failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
  if [ -z "$tps" ] || [ "${failed:-0}" != 0 ]; then
    echo "pgbench $script on $db: no tps, or failed transactions, in its report:" >&2
    cat "$out" >&2
    exit 1
  fi
  if [ ${#log[@]} -gt 0 ]; then
    cat "$out.log"/pgbench_log.* | awk '{print $3}' | sort -n | awk -v tps="$tps" '{a[NR] = $1}
      END {i = int(NR * 0.5); j = int(NR * 0.99); if (i < 1) i = 1; if (j < 1) j = 1
        printf "%s %.3f %.3f\n", tps, a[i] / 1000, a[j] / 1000}'
  else
    echo "$tps $lat $lat"
  fi
  rm -rf "$out.log"
}
checkpoint() { sql postgres CHECKPOINT; }

summary=()
# compare TITLE BAR_LABEL BAR KEEL_NAME RAW_NAME [NAME=FUNCTION...]: ROUNDS rounds of the shell functions
# arm_raw, arm_keel and the extra, unbarred arms in turn, each printing "FIGURE ..."; prints every round and
# the median of the per-round keel/raw ratios next to the bar, and adds that to the summary.
compare() {
  local title=$1 label=$2 limit=$3 kname=$4 rname=$5 r raw keel ratio line x out
  shift 5
  local -a extras=("$@") ratios=() raws=() keels=()
  local -A xs=() xr=()
  for r in $(seq "$ROUNDS"); do
    raw=$(arm_raw "$DURATION")
    keel=$(arm_keel "$DURATION")
    ratio=$(div "${keel%% *}" "${raw%% *}")
    raws+=("${raw%% *}") keels+=("${keel%% *}") ratios+=("$ratio")
    line=$(printf 'round %d: %s %.0f/s, %s %.0f/s (p50 %s ms, p99 %s ms): %s' "$r" "$rname" "${raw%% *}" "$kname" \
      "${keel%% *}" "$(cut -d' ' -f2 <<<"$keel")" "$(cut -d' ' -f3 <<<"$keel")" "$ratio")
    for x in "${extras[@]}"; do
      out=$("${x#*=}" "$DURATION")
      xs[${x%%=*}]+="${out%% *} "
      xr[${x%%=*}]+="$(div "${keel%% *}" "${out%% *}") "
      line+=$(printf '; %s %.0f/s (%s / it: %s)' "${x%%=*}" "${out%% *}" "$kname" "$(div "${keel%% *}" "${out%% *}")")
    done
    echo "$line"
  done
  ratio=$(median "${ratios[@]}")
  printf '%s: %s, median of %d rounds: %.3f (bar: >= %s: %s); medians: %s %.0f/s, %s %.0f/s' "$title" "$label" \
    "$ROUNDS" "$ratio" "$limit" "$(bar "$ratio" ">=" "$limit")" "$kname" "$(median "${keels[@]}")" "$rname" "$(median "${raws[@]}")"
  for x in "${extras[@]}"; do
    # shellcheck disable=SC2086  # the figures, split
    printf ', %s %.0f/s (%s / it: %s, no bar)' "${x%%=*}" "$(median ${xs[${x%%=*}]})" "$kname" "$(median ${xr[${x%%=*}]})"
  done
  echo
  line=$(printf '%-52s %.3f   (bar >= %s: %s)' "$title: $label" "$ratio" "$limit" "$(bar "$ratio" ">=" "$limit")")
  for x in "${extras[@]}"; do
    # shellcheck disable=SC2086
    line+=$(printf '; %s / %s: %s, no bar' "$kname" "${x%%=*}" "$(median ${xr[${x%%=*}]})")
  done
  summary+=("$line")
}
# extra_arms POOL_CLIENTS: the NAME=FUNCTION list of the unbarred arms asked for (RAW_LOCKED, RAW_POOL).
extra_arms() {
  arms=()
  if [ "$RAW_POOL" -gt 0 ]; then arms+=("raw@$1=arm_pool"); fi
  if [ "$RAW_LOCKED" = 1 ]; then arms+=("raw+lock=arm_locked"); fi
}

# counted_load URL SCRIPT OUT COUNT [WORDS]: through keel (wrk, 2 threads, 64 connections), until COUNT requests
# are answered (bench/lib/memory_common.lua), at most LOAD_LIMIT seconds.
counted_load() {
  local wrkpid
  rm -rf "$work/done" && mkdir "$work/done"
  BENCH_COUNT=$4 BENCH_WORDS=${5:-} BENCH_DONE_DIR=$work/done BENCH_THREADS=2 \
    taskset -c 0 wrk -t2 -c64 -d"${LOAD_LIMIT}s" -s "$2" "$1" >"$3" 2>&1 &
  wrkpid=$!
  while [ "$(ls "$work/done" | wc -l)" -lt 2 ] && kill -0 "$wrkpid" 2>/dev/null; do sleep 0.2; done
  kill -INT "$wrkpid" 2>/dev/null || true
  wait "$wrkpid" || true
  grep -q '^BENCH ' "$3" || { echo "the load with $2 failed:" >&2; cat "$3" >&2; exit 1; }
}

# --- on / off: POST /v1/memories ----------------------------------------------------------------------------
# insert_section SYNCHRONOUS_COMMIT: the insert comparison on database keel_SYNC. Leaves keel running (the
# `off` one serves the get section) with the user's token and id in BENCH_TOKEN and ins_uid.
insert_section() {
  local sync=$1 db=keel_$1 mem
  echo
  echo "== $sync: POST /v1/memories, synchronous_commit=$sync, $CONNS connections / raw pgbench, $CONNS clients"
  new_db "$db" "$sync"
  keel_up "$db" 2 "$pg_server/$db"
  register "http://127.0.0.1:$((kbase[$db] + 1))" "insert-$sync@example.com"
  ins_uid=$uid
  mem="http://127.0.0.1:$((kbase[$db] + 2))"
  insert_args=(-D uid="$uid" -D nrows="$ROWS" -D tp="$TP")
  arm_raw() { checkpoint; raw_run "$1" "$CONNS" "$db" pg_insert.sql "${insert_args[@]}" -D lock=0; }
  arm_locked() { checkpoint; raw_run "$1" "$CONNS" "$db" pg_insert.sql "${insert_args[@]}" -D lock=1; }
  arm_pool() { checkpoint; raw_run "$1" "$RAW_POOL" "$db" pg_insert.sql "${insert_args[@]}" -D lock=0; }
  arm_keel() { checkpoint; keel_run "$1" "$CONNS" bench/lib/memory_insert.lua "$mem/v1/memories"; }
  arm_raw "$WARMUP" >/dev/null
  arm_keel "$WARMUP" >/dev/null
  extra_arms "$RAW_POOL"
  compare "insert, synchronous_commit=$sync" "keel / raw" 0.8 keel raw "${arms[@]}"
  local check
  check=$(sql "$db" "SELECT (SELECT count(*) FROM memories WHERE user_id = '$uid') || ' ' ||
    (SELECT count(*) FROM observability_events WHERE type = 'keel.memory.created' AND subject = '$uid') || ' ' ||
    (SELECT count(*) FROM memory_tags WHERE user_id = '$uid')")
  read -r m e t <<<"$check"
  echo "stored for the user (keel's and raw's): $m memories, $e keel.memory.created events, $t tags$([ "$m" = "$e" ] || echo '  (NOT one event a memory)')"
}
if has on; then
  insert_section on
  keel_down keel_on
fi
if has off || has get; then
  if has off; then insert_section off; else
    new_db keel_off off
    keel_up keel_off 2 "$pg_server/keel_off"
    register "http://127.0.0.1:$((kbase[keel_off] + 1))" "insert-off@example.com"
    ins_uid=$uid
  fi
fi

# --- get: GET /v1/memories/{id} -----------------------------------------------------------------------------
if has get; then
  echo
  echo "== get: GET /v1/memories/{id}, $CONNS connections / raw pgbench's prepared primary-key select, $CONNS clients"
  mem="http://127.0.0.1:$((kbase[keel_off] + 2))"
  have=$(sql keel_off "SELECT count(*) FROM memories WHERE user_id = '$ins_uid'")
  if [ "$have" -lt "$GET_ROWS" ]; then
    counted_load "$mem/v1/memories" bench/lib/memory_insert.lua "$work/get-load.out" $((GET_ROWS - have))
    echo "loaded $((GET_ROWS - have)) memories through keel first"
  fi
  sql keel_off "INSERT INTO bench.ids SELECT row_number() OVER (), id FROM (SELECT id FROM memories WHERE user_id = '$ins_uid' ORDER BY random() LIMIT $GET_ROWS) s"
  sql keel_off "SELECT id FROM bench.ids ORDER BY k" >"$work/ids.txt"
  sql keel_off "VACUUM ANALYZE"
  nids=$(wc -l <"$work/ids.txt")
  echo "$nids ids of the user's $(sql keel_off "SELECT count(*) FROM memories WHERE user_id = '$ins_uid'") memories, asked for at random"
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  arm_raw() { raw_run "$1" "$CONNS" keel_off pg_get.sql -D uid="$ins_uid" -D nids="$nids" -D now="$now"; }
  arm_keel() { BENCH_IDS=$work/ids.txt keel_run "$1" "$CONNS" bench/lib/pg_get.lua "$mem"; }
  arm_raw "$WARMUP" >/dev/null
  arm_keel "$WARMUP" >/dev/null
  arm_pool() { raw_run "$1" "$RAW_POOL" keel_off pg_get.sql -D uid="$ins_uid" -D nids="$nids" -D now="$now"; }
  RAW_LOCKED=0 extra_arms "$RAW_POOL"
  compare "GET /v1/memories/{id}" "keel / raw" 0.8 keel raw "${arms[@]}"
fi
[ -n "${kpid[keel_off]:-}" ] && keel_down keel_off

# --- search: full-text search p99 -----------------------------------------------------------------------------
pg_me=""
if has search || has me; then
  new_db keel_search off  # reads only, but loaded faster
  keel_up keel_search 2 "$pg_server/keel_search"
  pg_me="http://127.0.0.1:$((kbase[keel_search] + 1))"
fi
if has search; then
  echo
  echo "== search: POST /v1/memories/search {\"query\"} at $SEARCH_DOCS memories of one user, 1 connection"
  mem="http://127.0.0.1:$((kbase[keel_search] + 2))"
  register "$pg_me" search@example.com
  search_uid=$uid
  start=$(date +%s.%N)
  counted_load "$mem/v1/memories" bench/lib/memory_insert.lua "$work/search-load.out" "$SEARCH_DOCS" 8-30
  loaded=$(sql keel_search "SELECT count(*) FROM memories WHERE user_id = '$search_uid'")
  printf 'loaded %s memories (8-30 words each, Zipf-distributed over %s words) through keel in %.1f s, %s non-2xx; VACUUM ANALYZE\n' \
    "$loaded" "$VOCAB" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')" "$(field "$work/search-load.out" non2xx)"
  sql keel_search "VACUUM ANALYZE"
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  arm_raw() { RAW_LATENCY=1 raw_run "$1" 1 keel_search pg_search.sql -D uid="$search_uid" -D nq="$QUERIES" -D now="$now"; }
  arm_keel() { keel_run "$1" 1 bench/lib/memory_search.lua "$mem/v1/memories/search"; }
  arm_raw "$WARMUP" >/dev/null
  arm_keel "$WARMUP" >/dev/null
  k99=() r99=() k50=() r50=()
  for r in $(seq "$ROUNDS"); do
    raw=$(arm_raw "$DURATION")
    keel=$(arm_keel "$DURATION")
    read -r rt rp50 rp99 <<<"$raw"
    read -r kt kp50 kp99 <<<"$keel"
    r99+=("$rp99") k99+=("$kp99") r50+=("$rp50") k50+=("$kp50")
    printf 'round %d: raw %.0f/s (p50 %s ms, p99 %s ms), keel %.0f/s (p50 %s ms, p99 %s ms)\n' "$r" "$rt" "$rp50" "$rp99" \
      "$kt" "$kp50" "$kp99"
  done
  kp99=$(median "${k99[@]}") rp99=$(median "${r99[@]}")
  printf 'full-text search at %s memories, 1 connection: keel p99 %s ms (p50 %s ms); raw ts_rank query p99 %s ms (p50 %s ms); keel/raw p99 %s (reported, no bar)\n' \
    "$loaded" "$kp99" "$(median "${k50[@]}")" "$rp99" "$(median "${r50[@]}")" "$(div "$kp99" "$rp99")"
  summary+=("$(printf '%-52s %s ms (raw %s ms; reported)' "full-text search p99 at $loaded memories: keel" "$kp99" "$rp99")")
fi

# --- me: GET /v1/auth/me, PostgreSQL / SQLite -----------------------------------------------------------------
if has me; then
  echo
  echo "== me: GET /v1/auth/me on PostgreSQL / on SQLite, $CONNS connections (both keels on core 1)"
  register "$pg_me" me-pg@example.com
  pg_token=$BENCH_TOKEN
  keel_up keel_sqlite 1 "sqlite://$work/keel_sqlite/keel.db"
  sqlite_me="http://127.0.0.1:$((kbase[keel_sqlite] + 1))"
  register "$sqlite_me" me-sqlite@example.com
  sqlite_token=$BENCH_TOKEN
  arm_raw() { BENCH_TOKEN=$sqlite_token keel_run "$1" "$CONNS" bench/lib/pg_get.lua "$sqlite_me/v1/auth/me"; }
  arm_keel() { BENCH_TOKEN=$pg_token keel_run "$1" "$CONNS" bench/lib/pg_get.lua "$pg_me/v1/auth/me"; }
  arm_raw "$WARMUP" >/dev/null
  arm_keel "$WARMUP" >/dev/null
  compare "GET /v1/auth/me" "PostgreSQL / SQLite" 0.5 postgresql sqlite
  keel_down keel_sqlite
fi
[ -n "${kpid[keel_search]:-}" ] && keel_down keel_search

# --- events: POST /v1/events over two keel processes ------------------------------------------------------------
if has events; then
  echo
  echo "== events: POST /v1/events, $CONNS connections over two keel processes (--services events) / raw pgbench, $CONNS clients"
  new_db keel_events on
  # The token first: it makes the signing key the processes then load.
  svc=$("$KEEL" token create --service bench --database "$pg_server/keel_events" --data-dir "$work/token" 2>>"$work/token.log")
  keel_up keel_events_a 5 "$pg_server/keel_events" --services events
  keel_up keel_events_b 5 "$pg_server/keel_events" --services events
  ev_a="127.0.0.1:$((kbase[keel_events_a] + 5))" ev_b="127.0.0.1:$((kbase[keel_events_b] + 5))"
  for a in "$ev_a" "$ev_b"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$a/v1/events" -H "Authorization: Bearer $svc" \
      -H 'Content-Type: application/json' -d '{"type":"bench.check","source":"/bench","data":{}}')
    [ "$code" = 201 ] || [ "$code" = 200 ] || { echo "POST /v1/events to $a: HTTP $code" >&2; exit 1; }
  done
  arm_raw() { checkpoint; raw_run "$1" "$CONNS" keel_events pg_event.sql -D tp="$TP" -D lock=0; }
  arm_locked() { checkpoint; raw_run "$1" "$CONNS" keel_events pg_event.sql -D tp="$TP" -D lock=1; }
  arm_pool() { checkpoint; raw_run "$1" $((2 * RAW_POOL)) keel_events pg_event.sql -D tp="$TP" -D lock=0; }
  arm_keel() { checkpoint; BENCH_TOKEN=$svc BENCH_ADDRS="$ev_a,$ev_b" keel_run "$1" "$CONNS" bench/lib/pg_events.lua "http://$ev_a/v1/events"; }
  arm_raw "$WARMUP" >/dev/null
  arm_keel "$WARMUP" >/dev/null
  extra_arms $((2 * RAW_POOL))
  compare "events ingest, two processes" "keel / raw" 0.8 keel raw "${arms[@]}"
  keel_down keel_events_a
  keel_down keel_events_b
fi

echo
echo "== summary (keel and PostgreSQL on core 1, wrk/pgbench on core 0; medians of $ROUNDS rounds of ${DURATION}s)"
printf '%s\n' "${summary[@]}"
errors=$(cat "$work"/keel-*.log 2>/dev/null | grep -c '"level":"error"' || true)
bad_runs=0
if [ -f "$work/bad" ]; then bad_runs=$(wc -l <"$work/bad"); fi
echo "keel errors logged during the run: $errors; keel runs with non-2xx answers or socket errors: $bad_runs"
[ "$bad_runs" = 0 ] || { echo "(figures from runs with errors are not valid)"; exit 1; }
