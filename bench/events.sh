#!/usr/bin/env bash
# The event log on SQLite, on this machine: ingest rate of POST /v1/events (wrk, 64 connections), follower lag
# (commit to delivery through GET /v1/events?after=&wait=) while 200 connections post concurrently, and 20
# concurrent usage posts with one idempotency key. Only 127.0.0.1 is targeted; loads are bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
DURATION=${DURATION:-5}
command -v wrk >/dev/null || { echo "missing wrk: scripts/setup.sh --bench" >&2; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

base=$(/usr/bin/python3 bench/lib/free_base.py 10)
KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn "$KEEL" serve --port-base "$base" --data-dir "$work/data" >"$work/keel.log" 2>&1 &
pid=$!
events="http://127.0.0.1:$((base + 5))/v1/events"
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$((base + 5))/health" && break; sleep 0.05; done
export BENCH_TOKEN
BENCH_TOKEN=$("$KEEL" token create --service bench --data-dir "$work/data")

rate=$(wrk -t2 -c64 -d"${DURATION}s" -s bench/lib/post_event.lua "$events" | awk '/Requests\/sec/ {print $2}')
stored=$(sqlite3 "$work/data/keel.db" "SELECT COUNT(*) FROM observability_events WHERE type = 'bench.ingest'" 2>/dev/null || echo "?")
printf 'ingest: %.0f events/s over %ss (64 connections), %s stored (bar: >= 10000/s)\n' "$rate" "$DURATION" "$stored"

/usr/bin/python3 bench/lib/follower.py "$events" "$BENCH_TOKEN" bench.lag "$((DURATION + 1))" &
follower=$!
sleep 0.5
busy=$(BENCH_TYPE=bench.lag wrk -t2 -c200 -d"${DURATION}s" -s bench/lib/post_event.lua "$events" | awk '/Requests\/sec/ {print $2}')
wait "$follower"
printf '(with 200 concurrent writers posting %.0f events/s; bar: follower lag <= 100 ms)\n' "$busy"

reg=$(curl -sf -X POST "http://127.0.0.1:$((base + 1))/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"correct horse battery"}')
uid=$(printf '%s' "$reg" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["user"]["id"])')
svc=$("$KEEL" token create --service memory --data-dir "$work/data")
/usr/bin/python3 - "$base" "$svc" "$uid" <<'PY'
import concurrent.futures, sys, threading, requests
base, token, uid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
barrier = threading.Barrier(20)
body = {"user_id": uid, "module": "memory", "metric": "writes", "quantity": 1, "idempotency_key": "bench-once"}
def post(_):
    barrier.wait()
    return requests.post(f"http://127.0.0.1:{base + 4}/v1/billing/usage", json=body,
                         headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code
with concurrent.futures.ThreadPoolExecutor(20) as pool:
    codes = list(pool.map(post, range(20)))
print(f"20 concurrent usage posts, one key: {codes.count(201)} x 201, {codes.count(200)} x 200, other {[c for c in codes if c not in (200, 201)]}")
PY
