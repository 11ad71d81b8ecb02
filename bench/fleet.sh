#!/usr/bin/env bash
# The fleet issue's bars, measured, each figure printed next to its bar:
#   1. time from SIGKILL of a host to no more routing to it                                   (bar <= 3 s)
#   2. failed requests during that kill: idempotent (bar 0), non-idempotent (reported)
#   3. the slowest answer while a gateway host is cut off from the database for 5 s             (bar <= 6 s)
#      and the time to recover after healing                                                    (bar <= 2 s)
#   4. requests allowed against a plan quota of L a minute across two gateways, alternating and burst clients
#                                                                                   (bar <= L + 2% + 2)
#   5. gateway throughput, cluster-wide limits on / per-process limits                          (bar >= 0.95)
# 1-4 run on the fleet tests' network-namespace fleet (tests/fleet/fleetlib.py, through bench/lib/fleet_bench.py:
# the same scenarios the tests assert), as root only; every request to a namespace address starts inside the
# fleet's client namespace, never in the host's. 5 runs on 127.0.0.1 only, with bench/gateway.sh's method (see
# below). Every load is bounded in time; the whole run takes about 1.5-2.5 minutes.
# KEEL_BIN picks the binary (default build/keel); ROUNDS, DURATION and CONNS shape part 5 as in gateway.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-3}
CONNS=${CONNS:-50}
. bench/lib/common.sh  # need_tools bench_init free_port wait_http median start_upstream start_keel closed_loop ...
need_tools wrk nginx taskset psql curl
status=0

echo "== parts 1-4: a fleet in network namespaces (router, PostgreSQL, gateways h1 h2, modules h3 h4, clients)"
if [ "$(id -u)" -ne 0 ]; then
  echo "parts 1-4 skipped: not root (they build network namespaces and run PostgreSQL as another user)"
else
  wait_binary  # the harness copies it once, for the whole run
  # The scenarios end by their own deadlines; the timeout only guards against a harness that hangs (SIGTERM:
  # the harness removes its namespaces and processes on the way out).
  KEEL_BIN="$KEEL" timeout 300 /usr/bin/python3 bench/lib/fleet_bench.py || status=$?
fi

# --- part 5 ----------------------------------------------------------------------------------------------------
# Two keel processes (gateway, auth, registry; 1 I/O thread) take turns on core 1, both on one throwaway
# PostgreSQL, both with limits on but so high that they never refuse (a refusal is cheaper than a proxied
# request and would flatter the figure: wrk's non-2xx count is checked every round):
#   A: KEEL_GATEWAY_CLUSTER_LIMITS=true  - the rate bucket and plan quota leased from the shared budgets in
#      PostgreSQL (the default)
#   B: KEEL_GATEWAY_CLUSTER_LIMITS=false - the same limits kept in the process's memory
# Each has a database of its own (CREATE DATABASE) rather than one shared: the two are then identical but for
# the setting, neither sees the other in its registry (so neither splits its per-process limits in two, nor
# routes to the other's modules), and the gateway_budgets table of each shows which one leases (A) and which
# one does not (B). The requests carry the bench user's bearer token, so the per-address limits never apply.
# As in bench/gateway.sh: the upstream is nginx `return 200` on core 0, registered in keel's registry as module
# "bench"; wrk runs on core 0, closed loop, -c$CONNS for DURATION s, rounds alternating A B A B; PostgreSQL also
# runs on core 0 (off the gateways' core, as a fleet's database is another machine); the figure is the median
# of the rounds' A/B ratios.
echo "== part 5: gateway throughput, cluster-wide limits on / per-process limits (127.0.0.1)"

wait_binary
bench_init
pgdir=""
stop_pg() { if [ -n "$pgdir" ]; then scripts/stop-postgres.sh "$pgdir"; fi; }
trap 'cleanup; stop_pg' EXIT  # keel and nginx first, then their database
cp "$KEEL" "$work/keel"       # one binary for the whole run, even if build/keel is rebuilt meanwhile
KEEL=$work/keel
"$KEEL" version >/dev/null

pg_env=$(taskset -c 0 scripts/start-postgres.sh)
pgdir=$(sed -n 's/^KEEL_TEST_PG_DIR=//p' <<<"$pg_env")
pg_url=$(sed -n 's/^KEEL_TEST_PG_URL=//p' <<<"$pg_env")
pg_server=${pg_url%/*}
for db in keel_cluster keel_local; do psql "$pg_url" -qc "CREATE DATABASE $db"; done

start_upstream
limited_gateway() {  # $1 = cluster limits true|false, $2 = port base, $3 = database, $4 = data dir
  KEEL_GATEWAY_CLUSTER_LIMITS="$1" KEEL_GATEWAY_USER_RATE=1000000000 KEEL_GATEWAY_USER_BURST=1000000000 \
    KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=1000000000000 start_keel "$2" --database "$3" --data-dir "$4"
}
kb=$(/usr/bin/python3 bench/lib/free_base.py 20)
kb2=$((kb + 10))
limited_gateway true "$kb" "$pg_server/keel_cluster" "$work/a"
limited_gateway false "$kb2" "$pg_server/keel_local" "$work/b"
for side in "$kb keel_cluster $work/a" "$kb2 keel_local $work/b"; do
  read -r base db dir <<<"$side"
  svc=$("$KEEL" token create --service bench --database "$pg_server/$db" --data-dir "$dir")
  register_upstream "http://127.0.0.1:$((base + 3))" "$svc"
  register_user "http://127.0.0.1:$((base + 1))" >"$dir.token"
done
auth_a=(-H "Authorization: Bearer $(cat "$work/a.token")")
auth_b=(-H "Authorization: Bearer $(cat "$work/b.token")")
url_a="http://127.0.0.1:$kb/bench"
url_b="http://127.0.0.1:$kb2/bench"
routes() {  # the gateways follow the registry: wait until both route /bench to the upstream
  local a b
  for _ in $(seq 100); do
    a=$(curl -s -o /dev/null -w '%{http_code}' "${auth_a[@]}" "$url_a")
    b=$(curl -s -o /dev/null -w '%{http_code}' "${auth_b[@]}" "$url_b")
    if [ "$a" = 200 ] && [ "$b" = 200 ]; then return 0; fi
    sleep 0.05
  done
  echo "the gateways do not route /bench: $a (cluster limits), $b (per-process)" >&2
  exit 1
}
routes
budget_rows() { psql "$pg_server/$1" -Atc "SELECT count(*) FROM gateway_budgets"; }
rows_a=$(budget_rows keel_cluster)
rows_b=$(budget_rows keel_local)
echo "shared budget rows after one request each: cluster-limits gateway $rows_a, per-process gateway $rows_b"
if [ "$rows_a" -eq 0 ] || [ "$rows_b" -ne 0 ]; then
  echo "the gateways' limits are not in the modes this part compares" >&2
  exit 1
fi

# closed_rps ARGS...: requests/s of one closed-loop run; a run with answers other than 2xx/3xx or socket errors
# is reported on stderr and leaves a mark in $work/bad (the limits refused, or the gateway failed).
closed_rps() {
  local out
  out=$(closed_loop "$@")
  if grep -Eq 'Non-2xx|Socket errors' <<<"$out"; then
    echo "  not every answer was 2xx: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd';')" >&2
    echo "${@: -1}" >>"$work/bad"  # the URL
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}

echo "closed-loop throughput, wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS rounds A B (req/s)"
ratios=()
as=()
bs=()
for r in $(seq "$ROUNDS"); do
  a=$(closed_rps "${auth_a[@]}" "$url_a")
  b=$(closed_rps "${auth_b[@]}" "$url_b")
  ratio=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", a / b}')
  as+=("$a"); bs+=("$b"); ratios+=("$ratio")
  echo "round $r: A cluster-wide limits $a  B per-process limits $b  A/B $ratio"
done
echo "shared budget rows after the rounds: cluster-limits gateway $(budget_rows keel_cluster), per-process gateway $(budget_rows keel_local)"
m=$(median "${ratios[@]}")
awk -v m="$m" -v a="$(median "${as[@]}")" -v b="$(median "${bs[@]}")" -v bad="$([ -s "$work/bad" ] && echo 1 || echo 0)" 'BEGIN {
  printf "5. throughput, cluster-wide limits / per-process limits: median of the rounds %.3f (bar >= 0.95: %s)   medians A %s B %s req/s%s\n",
    m, (m >= 0.95 ? "ok" : "MISSED"), a, b, (bad ? "; some runs had non-2xx answers (see above): the figure is not valid" : "") }'
if [ -s "$work/bad" ]; then status=1; fi
exit "$status"
