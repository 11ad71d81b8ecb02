#!/usr/bin/env bash
# Realtime streams (GET /v1/stream through the gateway), each figure next to its bar:
#   1. 1,000 subscribers (200 users x 5 streams), 200 memory writes a second for DURATION s (SQLite, one
#      process): latency from each write's 201 to its receipt, p99 <= 50 ms; 0 lost, 0 duplicated.
#   2. 10,000 idle subscribers: keel's RSS grows by <= 100 MB, and /health p99 < 10 ms while they are open.
#   3. Two processes on one PostgreSQL (scripts/start-postgres.sh starts a throwaway cluster): 1,000 streams on
#      one, the writes through the other: p99 <= 100 ms, 0 lost, 0 duplicated.
# The gateway's per-address and rate limits are lifted (every client here is 127.0.0.1); only 127.0.0.1 is
# targeted, for a bounded time. SKIP_PG=1 leaves out 3.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
DURATION=${DURATION:-20}
source bench/lib/common.sh
bench_init
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"  # 10,000 streams: a descriptor each, here and in keel
# One master key for every keel on the database (each data dir would otherwise make its own).
master=$(head -c 32 /dev/urandom | base64 | tr -d '\n')

# A keel with the limits a bench from one address needs; its pid in $kpid, its port base in $kbase.
start_keel() {  # start_keel NAME [DATABASE_URL]
  local name=$1 db=${2:-}
  kbase=$(/usr/bin/python3 bench/lib/free_base.py 10)
  env KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn KEEL_MAX_CONNECTIONS=30000 KEEL_MAX_CONNECTIONS_PER_IP=0 \
    KEEL_GATEWAY_USER_RATE=0 KEEL_GATEWAY_IP_RATE=0 KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 \
    KEEL_AUTH_MASTER_KEY="$master" ${db:+KEEL_DATABASE=$db} "$KEEL" serve --port-base "$kbase" --data-dir "$work/$name" >"$work/$name.log" 2>&1 &
  kpid=$!
  pids+=("$kpid")
  wait_http "http://127.0.0.1:$kbase/health"
}

fanout_verdict() {  # fanout_verdict OUTPUT BAR_MS LABEL: the figures of a fan-out run next to their bars
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
out, bar, label = sys.argv[1], float(sys.argv[2]), sys.argv[3]
r = json.loads([l for l in open(out) if l.startswith("{")][-1])
print(f"bar: {label} {r['p99_ms']:.1f} ms <= {bar:.0f} ms: {'met' if r['p99_ms'] <= bar else 'NOT met'}; "
      f"lost {r['lost']} and duplicated {r['duplicated']} == 0: {'met' if r['lost'] == r['duplicated'] == 0 else 'NOT met'}")
PY
}

echo "== 1. fan-out on SQLite: 1,000 subscribers, 200 writes/s for ${DURATION} s"
start_keel one
/usr/bin/python3 bench/lib/stream_bench.py fanout "http://127.0.0.1:$kbase" "http://127.0.0.1:$kbase" 200 5 200 "$DURATION" \
  | tee "$work/fanout.out" | grep -v '^{'
fanout_verdict "$work/fanout.out" 50 "p99"

echo "== 2. 10,000 idle subscribers (the same process)"
/usr/bin/python3 bench/lib/stream_bench.py idle "http://127.0.0.1:$kbase" 100 10000 "$kpid" | tee "$work/idle.out" | grep -v '^{'
/usr/bin/python3 - "$work/idle.out" <<'PY'
import json, sys
r = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
print(f"bar: RSS growth {r['rss_growth_mib']:.1f} MiB <= 100 MB: {'met' if r['rss_growth_mib'] * 1.048576 <= 100 else 'NOT met'}; "
      f"/health p99 {r['health_p99_ms']:.2f} ms < 10 ms: {'met' if r['health_p99_ms'] < 10 else 'NOT met'}")
PY
kill "$kpid"; wait "$kpid" 2>/dev/null || true

if [ "${SKIP_PG:-0}" != 1 ]; then
  echo "== 3. across processes on PostgreSQL: streams on one keel, writes through another"
  eval "$(scripts/start-postgres.sh | sed 's/^/export /')"
  trap 'cleanup; scripts/stop-postgres.sh "$KEEL_TEST_PG_DIR"' EXIT
  db="${KEEL_TEST_PG_URL%/*}/keel_stream_bench"
  psql "${KEEL_TEST_PG_URL}" -qc "CREATE DATABASE keel_stream_bench" >/dev/null
  start_keel reader "$db"; reader=$kbase
  start_keel writer "$db"; writer=$kbase
  /usr/bin/python3 bench/lib/stream_bench.py fanout "http://127.0.0.1:$writer" "http://127.0.0.1:$reader" 200 5 200 "$DURATION" \
    | tee "$work/cross.out" | grep -v '^{'
  fanout_verdict "$work/cross.out" 100 "cross-process p99"
fi
