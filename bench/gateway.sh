#!/usr/bin/env bash
# The gateway against nginx and haproxy as reverse proxies to the same upstream, in one run on this machine:
#   wrk -> nginx (proxy, upstream keepalive, 1 worker) -> upstream
#   wrk -> haproxy (1 thread, http-reuse)              -> upstream
#   wrk -> keel gateway (1 I/O thread), token checks on and off -> upstream (registered in keel's registry)
# The proxies share core 1; wrk and the upstream (nginx `return 200`) run on core 0. Throughput is closed-loop
# wrk, alternating A B C D per round; latency is h2load at a fixed rate below saturation (p99), also per round;
# the figures are medians over the rounds. Every target gets the same requests, the user's bearer token among
# their headers as a client of the platform sends it: keel with token checks on verifies it (and does not pass
# it to the third-party upstream); nginx, haproxy and keel with checks off pass it on.
# Only 127.0.0.1 is targeted; every load is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
ROUNDS=${ROUNDS:-7}
DURATION=${DURATION:-3}
CONNS=${CONNS:-50}
RATE=${RATE:-8000}
. bench/lib/common.sh  # need_tools bench_init free_port wait_http median start_upstream start_keel rps ...
need_tools wrk nginx haproxy h2load taskset
bench_init

# The upstream: nginx answering 200 with a small JSON body.
start_upstream
mkdir -p "$work/px"

ngx=$(free_port)
cat > "$work/px/nginx.conf" <<NGINX
worker_processes 1; daemon off; pid $work/px/nginx.pid; error_log $work/px/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$up; keepalive 128; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$ngx;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
NGINX
taskset -c 1 nginx -c "$work/px/nginx.conf" -p "$work/px" & pids+=($!)

hap=$(free_port)
cat > "$work/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$hap
  default_backend be
backend be
  server up 127.0.0.1:$up
HAP
taskset -c 1 haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 & pids+=($!)

keel_gateway() {  # $1 = edge auth on|off, $2 = port base
  KEEL_GATEWAY_EDGE_AUTH="$1" KEEL_GATEWAY_USER_RATE=0 KEEL_GATEWAY_IP_RATE=0 KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 \
    start_keel "$2" --data-dir "$work/keel"
}
kb=$(/usr/bin/python3 bench/lib/free_base.py 20)
kb2=$((kb + 10))
keel_gateway true "$kb"
keel_gateway false "$kb2"
svc=$("$KEEL" token create --service bench --data-dir "$work/keel")
register_upstream "http://127.0.0.1:$((kb + 3))" "$svc"
token=$(register_user "http://127.0.0.1:$((kb + 1))")
auth=(-H "Authorization: Bearer $token")
sleep 1.2  # the gateways follow the registry
for u in "http://127.0.0.1:$ngx/bench" "http://127.0.0.1:$hap/bench"; do wait_http "$u"; done
[ "$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "http://127.0.0.1:$kb/bench")" = 200 ] || { echo "keel gateway not routing" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$kb2/bench")" = 200 ] || { echo "keel gateway (no auth) not routing" >&2; exit 1; }

p99() {  # fixed-rate latency: 10 clients x RATE/10 req/s for DURATION s; prints p99 in ms
  rm -f "$work/h2.log"
  taskset -c 0 h2load --h1 -c 10 -D "$DURATION" --rps $((RATE / 10)) --log-file "$work/h2.log" "$@" >/dev/null 2>&1
  /usr/bin/python3 bench/lib/p99.py "$work/h2.log"
}

# measure FN: ROUNDS rounds of FN (rps or p99) on the four targets in turn, the same requests to each; prints
# every round and leaves the medians in m_ngx m_hap m_on m_off.
measure() {
  local fn=$1 r n h on off
  local -a a_ngx a_hap a_on a_off
  for r in $(seq "$ROUNDS"); do
    n=$($fn "${auth[@]}" "http://127.0.0.1:$ngx/bench"); h=$($fn "${auth[@]}" "http://127.0.0.1:$hap/bench")
    on=$($fn "${auth[@]}" "http://127.0.0.1:$kb/bench"); off=$($fn "${auth[@]}" "http://127.0.0.1:$kb2/bench")
    a_ngx+=("$n"); a_hap+=("$h"); a_on+=("$on"); a_off+=("$off")
    echo "round $r: nginx $n  haproxy $h  keel(tokens on) $on  keel(tokens off) $off"
  done
  m_ngx=$(median "${a_ngx[@]}"); m_hap=$(median "${a_hap[@]}"); m_on=$(median "${a_on[@]}"); m_off=$(median "${a_off[@]}")
}

echo "closed-loop throughput, wrk -t1 -c$CONNS -d${DURATION}s, $ROUNDS rounds (req/s)"
measure rps
awk -v n="$m_ngx" -v h="$m_hap" -v on="$m_on" -v off="$m_off" 'BEGIN {
  printf "throughput, medians: keel(on)/nginx %.2f  keel(on)/haproxy %.2f  keel(off)/nginx %.2f  keel(off)/haproxy %.2f  (bar: on/nginx >= 1.0)\n", on/n, on/h, off/n, off/h }'

echo "latency at a fixed $RATE req/s (h2load, 10 connections), p99 in ms, $ROUNDS rounds"
measure p99
echo "p99 medians: nginx $m_ngx  haproxy $m_hap  keel(on) $m_on  keel(off) $m_off"
awk -v n="$m_ngx" -v h="$m_hap" -v on="$m_on" -v off="$m_off" 'BEGIN {
  printf "p99 ratios: keel(on)/nginx %.2f  keel(on)/haproxy %.2f  keel(off)/nginx %.2f  (bar: on/nginx <= 1.2)\n", on/n, on/h, off/n }'
