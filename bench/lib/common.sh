# Shell helpers shared by bench/gateway.sh and bench/fleet.sh; sourced from the repository's root, under the
# caller's `set -euo pipefail`. The caller sets KEEL (the binary) and, for rps, CONNS and DURATION.

need_tools() {  # need_tools TOOL...: exits naming the first one missing
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "missing $tool: scripts/setup.sh --bench" >&2; exit 1; }
  done
}

# bench_init: a work directory ($work) and the pids of what the script starts in the background ($pids), both
# removed on exit (cleanup; a script that needs more on exit sets its own trap and calls cleanup first).
bench_init() {
  work=$(mktemp -d)
  pids=()
  trap cleanup EXIT
}
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }

wait_binary() {  # build/keel is rebuilt from time to time: wait until it exists and has stopped changing
  local last="" cur
  for _ in $(seq 300); do
    cur=$(stat -c '%s %y' "$KEEL" 2>/dev/null || true)
    if [ -n "$cur" ] && [ "$cur" = "$last" ] && [ -x "$KEEL" ]; then return 0; fi
    last=$cur
    sleep 1
  done
  echo "$KEEL did not appear (or kept changing) for 300 s; set KEEL_BIN or build it" >&2
  exit 1
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -s -o /dev/null "$@" && return 0; sleep 0.05; done; echo "no answer: $*" >&2; exit 1; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# start_upstream: the upstream, nginx answering 200 with a small JSON body, on core 0; its port in $up.
start_upstream() {
  up=$(free_port)
  mkdir -p "$work/up"
  cat > "$work/up/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $work/up/nginx.pid; error_log $work/up/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$up; location / { default_type application/json; return 200 '{"upstream":"nginx"}'; } } }
NGINX
  taskset -c 0 nginx -c "$work/up/nginx.conf" -p "$work/up" & pids+=($!)
}

# start_keel PORT_BASE [serve options...]: `keel serve --services gateway,auth,registry --io-threads 1` on core 1,
# quiet (no access log), with the caller's KEEL_* environment; returns once its gateway answers /health.
start_keel() {
  local base=$1
  shift
  KEEL_ACCESS_LOG=false KEEL_LOG_LEVEL=warn \
    taskset -c 1 "$KEEL" serve --io-threads 1 --services gateway,auth,registry --port-base "$base" "$@" \
    >>"$work/keel.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$base/health"
}

# register_upstream REGISTRY_URL SERVICE_TOKEN: the upstream ($up) as module "bench", instance "nginx", serving
# /bench, for an hour.
register_upstream() {
  curl -sf -X PUT "$1/v1/registry/modules/bench/instances/nginx" -H "Authorization: Bearer $2" \
    -H 'Content-Type: application/json' -d "{\"url\":\"http://127.0.0.1:$up\",\"routes\":[\"/bench\"],\"ttl_seconds\":3600}" >/dev/null
}

# register_user AUTH_URL: registers bench@example.com and prints its access token.
register_user() {
  curl -sf -X POST "$1/v1/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","password":"correct horse battery"}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# closed_loop ARGS...: closed-loop wrk on core 0 (one thread, CONNS connections, DURATION s); prints wrk's report.
# rps ARGS...: the same; prints requests/s.
closed_loop() { taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" "$@"; }
rps() { closed_loop "$@" | awk '/Requests\/sec/ {print $2}'; }
