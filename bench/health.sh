#!/usr/bin/env bash
# keel's GET /health against nginx `return 200` (one worker, access log off), on this machine, in one run:
# the servers share core 1, wrk runs on core 0, and the two alternate (A B A B ...). Prints the median of
# the per-round throughput ratios, keel's idle RSS with all six modules, and its start-up time.
# Only 127.0.0.1 is targeted; every run is bounded by ROUNDS x DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-50}
SERVER_CPU=${SERVER_CPU:-1}
CLIENT_CPU=${CLIENT_CPU:-0}
for tool in wrk nginx taskset; do command -v $tool >/dev/null || { echo "missing $tool: scripts/setup.sh --bench" >&2; exit 1; }; done

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

# keel: one I/O thread (like nginx's one worker), access log off (like nginx's).
kbase=$(/usr/bin/python3 bench/lib/free_base.py 20)
KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn taskset -c "$SERVER_CPU" "$KEEL" serve --io-threads 1 \
  --port-base "$kbase" --data-dir "$work/keel" >"$work/keel.log" 2>&1 &
pids+=($!)
keel_url="http://127.0.0.1:$kbase/health"
wait_http "$keel_url"
body=$(curl -s "$keel_url")

nport=$(free_port)
mkdir -p "$work/nginx"
printf '%s' "$body" > "$work/nginx/health.json"
cat > "$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nport;
    location / { default_type application/json; return 200 '$body'; }
  }
}
NGINX
taskset -c "$SERVER_CPU" nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
pids+=($!)
nginx_url="http://127.0.0.1:$nport/health"
wait_http "$nginx_url"

rps() { taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" "$1" | awk '/Requests\/sec/ {print $2}'; }

echo "GET /health, wrk -t1 -c$CONNS -d$DURATION on cpu $CLIENT_CPU; servers on cpu $SERVER_CPU; $ROUNDS rounds"
ratios=()
for r in $(seq "$ROUNDS"); do
  n=$(rps "$nginx_url"); k=$(rps "$keel_url")
  ratio=$(awk -v k="$k" -v n="$n" 'BEGIN {printf "%.3f", k / n}')
  ratios+=("$ratio")
  printf 'round %d: nginx %10.0f req/s   keel %10.0f req/s   keel/nginx %s\n' "$r" "$n" "$k" "$ratio"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "keel/nginx /health throughput, median of $ROUNDS rounds: $median (bar: >= 0.85)"

for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

sbase=$(/usr/bin/python3 bench/lib/free_base.py 6)  # a base of its own: kbase + 10 may be taken
/usr/bin/python3 bench/lib/startup.py "$KEEL" "$sbase" "$work" 5
echo "(bars: start to healthy <= 200 ms, idle RSS <= 30 MiB)"
