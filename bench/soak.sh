#!/usr/bin/env bash
# A soak (issue #13's bars for memory and disk): keel on SQLite with every module, on core 1; a mixed load of
# SOAK_USERS users (6) at SOAK_RATE requests a second each (60) through the gateway, from core 0, for
# SOAK_SECONDS (600): reads, memory writes, edits, deletes and searches (text and vector), events, usage
# reads, token refreshes every minute and a new session every 4 minutes, with access tokens that expire in 2
# minutes. Prints RSS, the data directory and the windowed tables every 10 s, then RSS at the end over RSS
# after the first minute (bar <= 1.05) and the data directory's growth in the last third against 10% of the
# first third's plus the windowed live data (events, sessions, idempotent answers, ledger) the last third
# added. Only 127.0.0.1 is targeted; keel and its data are removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
SECONDS_=${SOAK_SECONDS:-600}
source bench/lib/common.sh
need_tools taskset curl
wait_binary
bench_init
cp "$KEEL" "$work/keel"

base=$(/usr/bin/python3 bench/lib/free_base.py 10)
KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn KEEL_GATEWAY_USER_RATE=0 KEEL_GATEWAY_IP_RATE=0 \
  KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 KEEL_AUTH_ACCESS_TTL_SECONDS=120 KEEL_AUTH_LOGIN_MAX_FAILURES_PER_IP=1000000 \
  taskset -c 1 "$work/keel" serve --port-base "$base" --data-dir "$work/data" >"$work/keel.log" 2>&1 &
keel_pid=$!
pids+=("$keel_pid")
wait_http "http://127.0.0.1:$base/health"
svc=$("$work/keel" token create --service soak --data-dir "$work/data" 2>>"$work/keel.log")
echo "keel (SQLite, every module) on core 1, pid $keel_pid; ${SECONDS_} s of mixed load from core 0"
status=0
taskset -c 0 /usr/bin/python3 bench/lib/soak.py "http://127.0.0.1:$base" "$svc" "$keel_pid" "$work/data" \
  "$SECONDS_" 2>"$work/soak.err" || status=$?
errors=$(grep -c '"level":"error"' "$work/keel.log" || true)
echo "keel errors logged: $errors; the load's own complaints: $(wc -l <"$work/soak.err")"
head -n 5 "$work/soak.err" >&2
exit "$status"
