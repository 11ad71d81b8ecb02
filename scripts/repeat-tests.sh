#!/usr/bin/env bash
# Flakiness check: `make test` RUNS times in a row (default 20) while a compiler loads the other core, stopping
# at the first failure. The load is a clean single-job rebuild of this checkout in a build directory of its
# own (LOAD_DIR, default build-load), started again each time it finishes, niced like nothing: it competes
# with the suite for the CPU as a developer's build or a neighbour's job would.
# Prints one line a run (its exit status and seconds) and a summary; each run's output is in LOG_DIR.
# A developer tool, not part of `make test`: 20 runs take about 1 h 45 min on this 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
LOAD_DIR=${LOAD_DIR:-build-load}
LOG_DIR=${LOG_DIR:-$(mktemp -d)}
mkdir -p "$LOG_DIR"

make build >/dev/null  # once, before the load starts: each run's own `make build` is then a no-op
cmake -S . -B "$LOAD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null

# In a session of its own, so that stopping it stops the compiler it is running too.
setsid bash -c "while :; do cmake --build '$LOAD_DIR' --clean-first -j 1 >/dev/null 2>&1 || sleep 1; done" &
load_pid=$!
trap 'kill -- "-$load_pid" 2>/dev/null || true' EXIT
echo "load: a clean 'cmake --build $LOAD_DIR --clean-first -j 1' loop (pid $load_pid); logs in $LOG_DIR"

passed=0
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  rc=0
  make test >"$LOG_DIR/run-$i.log" 2>&1 || rc=$?
  echo "run $i: exit $rc, $(($(date +%s) - start)) s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  if [ "$rc" != 0 ]; then
    echo "run $i failed; the end of its log ($LOG_DIR/run-$i.log):"
    grep -E "FAILED|Error|failed" "$LOG_DIR/run-$i.log" | tail -n 20
    break
  fi
  passed=$((passed + 1))
done
echo "passed $passed of $RUNS consecutive runs under load"
[ "$passed" = "$RUNS" ]
