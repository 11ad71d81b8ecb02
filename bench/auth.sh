#!/usr/bin/env bash
# auth on this machine, in one run: login throughput against raw argon2id hashes per second at the same
# parameters (libsodium, both cores), GET /v1/auth/me throughput (token and session check), and 20
# concurrent registrations of one email. Only 127.0.0.1 is targeted; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
ARGON=${ARGON_BIN:-$PWD/build/keel_bench_argon2}
DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-6}
MEM_KIB=19456
ITERS=2
THREADS=$(nproc)
for tool in wrk curl; do command -v $tool >/dev/null || { echo "missing $tool: scripts/setup.sh --bench" >&2; exit 1; }; done

work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

base=$(/usr/bin/python3 bench/lib/free_base.py 10)
KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn "$KEEL" serve --port-base "$base" --data-dir "$work/data" >"$work/keel.log" 2>&1 &
pid=$!
auth="http://127.0.0.1:$((base + 1))"
for _ in $(seq 200); do curl -sf -o /dev/null "$auth/health" && break; sleep 0.05; done

export BENCH_EMAIL="bench@example.com" BENCH_PASSWORD="correct horse battery"
reg=$(curl -sf -X POST "$auth/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"email\":\"$BENCH_EMAIL\",\"password\":\"$BENCH_PASSWORD\"}")
token=$(printf '%s' "$reg" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# This machine's speed drifts (shared host), so short alternating rounds and the median of their ratios.
echo "argon2id m=${MEM_KIB} KiB t=${ITERS} p=1, $THREADS threads; $ROUNDS rounds of ${DURATION}s each, A B A B"
ratios=()
for round in $(seq "$ROUNDS"); do
  raw=$("$ARGON" "$MEM_KIB" "$ITERS" "$THREADS" "$DURATION")
  logins=$(wrk -t1 -c8 -d"${DURATION}s" -s bench/lib/login.lua "$auth/v1/auth/login" | awk '/Requests\/sec/ {print $2}')
  ratio=$(awk -v a="$logins" -v b="$raw" 'BEGIN {printf "%.3f", a / b}')
  ratios+=("$ratio")
  printf 'round %d: raw argon2id %8.1f hashes/s   keel login %8.1f req/s   login/raw %s\n' "$round" "$raw" "$logins" "$ratio"
done
printf 'login throughput / raw argon2id throughput: %s (bar: >= 0.9)\n' \
  "$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"

me=$(wrk -t1 -c32 -d"$((DURATION * 2))s" -H "Authorization: Bearer $token" "$auth/v1/auth/me" | awk '/Requests\/sec/ {print $2}')
printf 'GET /v1/auth/me (token + session check, user read): %.0f req/s\n' "$me"
errors=$(grep -c '"level":"error"' "$work/keel.log" || true)
/usr/bin/python3 bench/lib/race_register.py "$auth"
echo "keel errors logged during the run: $errors"
