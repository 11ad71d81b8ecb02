#!/usr/bin/env bash
# The admin console's bars (issue "Admin console"), each figure next to its bar:
#   1. First paint of the overview <= 1 s on this machine, with the gateway serving: RUNS fresh loads of /admin/ in
#      headless Chromium, signed in as an admin; the page's first contentful paint, and the time from pressing
#      "Sign in" to the overview painted with its data. Once with the gateway idle, once while wrk keeps it busy
#      (CONNS connections on /v1/registry/modules with an admin's token, for as long as the runs take).
#   2. The console's assets add <= 300 KB gzip to the binary: every file it embeds, gzip -9.
# Only 127.0.0.1 is targeted, for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
KEEL=${KEEL_BIN:-$PWD/build/keel}
RUNS=${RUNS:-10}
CONNS=${CONNS:-32}
source bench/lib/common.sh
bench_init
need_tools chromium chromedriver wrk

base=$(/usr/bin/python3 bench/lib/free_base.py 6)
KEEL_LOG_LEVEL=warn KEEL_ACCESS_LOG=false KEEL_GATEWAY_USER_RATE=0 KEEL_GATEWAY_IP_RATE=0 \
  KEEL_BILLING_FREE_REQUESTS_PER_MINUTE=0 "$KEEL" serve --port-base "$base" --data-dir "$work/data" >"$work/keel.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$base/health"
echo "bench password" | "$KEEL" user create --email bench@example.com --password-stdin --admin --data-dir "$work/data" 2>/dev/null >/dev/null
token=$(curl -s "http://127.0.0.1:$base/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.com","password":"bench password"}' | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "== 1. first paint of the overview ($RUNS loads; Chromium $(chromium --version 2>/dev/null | awk '{print $2}'))"
/usr/bin/python3 bench/lib/console_bench.py "http://127.0.0.1:$base" bench@example.com "bench password" "$RUNS" \
  wrk -t 1 -c "$CONNS" -d 300s -H "Authorization: Bearer $token" "http://127.0.0.1:$base/v1/registry/modules" \
  | tee "$work/paint.json"
/usr/bin/python3 - "$work/paint.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    worst = max(r["first_paint_ms"]["max"], r["overview_painted_ms"]["max"])
    print(f"bar ({r['phase']}): first paint median {r['first_paint_ms']['median']:.0f} ms, overview painted with its "
          f"data median {r['overview_painted_ms']['median']:.0f} ms, worst of either {worst:.0f} ms <= 1000 ms: "
          f"{'met' if worst <= 1000 else 'NOT met'}")
PY

echo "== 2. the console's assets, as embedded"
total=0
# Every file the binary embeds (cmake/embed_console.cmake): the console's own, and uPlot's two.
own=$(cd src/keel/gateway/console && ls -- *.html *.js *.css)
for name in $own uplot.js uplot.css; do
  raw=$(curl -s "http://127.0.0.1:$base/admin/$name" | wc -c)
  gz=$(curl -s "http://127.0.0.1:$base/admin/$name" | gzip -9 | wc -c)
  [ "$raw" -gt 0 ] || { echo "/admin/$name: not served" >&2; exit 1; }
  printf '  %-12s %7d bytes, %6d gzip\n' "$name" "$raw" "$gz"
  total=$((total + gz))
done
echo "bar: assets $((total / 1024)) KiB gzip <= 300 KB: $([ "$total" -le 300000 ] && echo met || echo 'NOT met')"
