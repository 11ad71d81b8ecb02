#!/usr/bin/env bash
# The sanitizer jobs (.ci/run runs them after `make test`):
#   1. ASan + UBSan (build-asan): the unit tests (SQLite and a PostgreSQL this script starts), then the
#      end-to-end suite on SQLite against the sanitized keel, each keel stopped with SIGTERM so that its shutdown runs
#      sanitized too. Any report stops the run (halt_on_error, and -fno-sanitize-recover for UBSan); a leak at exit
#      fails it too.
#   2. TSan (build-tsan): the unit tests, on both backends (their threads: the worker pools, group writes, pipes, the sequencer's
#      rounds, SQLite's writer).
# The sanitized builds take the plain socket calls instead of the fast paths that bypass libc (CMakeLists.txt,
# KEEL_PLAIN_IO). SANITIZE_JOBS picks jobs ("address thread" by default).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=${SANITIZE_JOBS:-address thread}
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
eval "$(scripts/start-postgres.sh | sed 's/^/export /')"
trap 'scripts/stop-postgres.sh "$KEEL_TEST_PG_DIR"' EXIT

# The fuzz targets' corpus runners (fuzz/: each corpus file through its target), which ctest runs too.
corpus_runners=()
for src in fuzz/*.cpp; do
  name=$(basename "$src" .cpp)
  [ "$name" = standalone_main ] || corpus_runners+=("fuzz_${name}_corpus")
done

build() {  # build DIR SANITIZER TARGETS...
  local dir=$1 kind=$2
  shift 2
  # -O1 with line tables: a third quicker to build than -O2 -g on two cores, with readable stack traces.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -g1" -DKEEL_SANITIZE="$kind" >/dev/null
  cmake --build "$dir" -j "$(nproc)" --target "$@"
}

for job in $jobs; do
  case $job in
    address)
      echo "== ASan + UBSan: build"
      build build-asan address keel keel_unit_tests "${corpus_runners[@]}"
      echo "== ASan + UBSan: unit tests (SQLite and PostgreSQL at ${KEEL_TEST_PG_URL:-NOWHERE})"
      KEEL_REQUIRE_PG=1 ctest --test-dir build-asan --output-on-failure -j 2
      echo "== ASan + UBSan: end-to-end tests (SQLite)"
      # One test preloads a name-lookup shim (LD_PRELOAD) ahead of ASan's runtime: allowed here.
      # Every keel is stopped with SIGTERM at its test's end, so shutdown runs under ASan too; one that does not
      # then exit 0 (a sanitizer report at exit) is listed in the stop log, which fails the job.
      stop_log=$(mktemp)
      KEEL_BIN="$PWD/build-asan/keel" KEEL_TEST_PG_URL="" KEEL_REQUIRE_PG="" \
        KEEL_E2E_GRACEFUL_STOP=1 KEEL_E2E_STOP_LOG="$stop_log" KEEL_E2E_PLAIN_IO=1 \
        ASAN_OPTIONS="$ASAN_OPTIONS:verify_asan_link_order=0" \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e -k "not postgres"
      if [ -s "$stop_log" ]; then
        echo "keel did not exit cleanly after SIGTERM:" >&2
        cat "$stop_log" >&2
        rm -f "$stop_log"
        exit 1
      fi
      rm -f "$stop_log"
      ;;
    thread)
      echo "== TSan: build"
      build build-tsan thread keel_unit_tests "${corpus_runners[@]}"
      echo "== TSan: unit tests (SQLite and PostgreSQL at ${KEEL_TEST_PG_URL:-NOWHERE})"
      KEEL_REQUIRE_PG=1 ctest --test-dir build-tsan --output-on-failure -j 2
      ;;
    *)
      echo "unknown sanitizer job '$job' (address, thread)" >&2
      exit 2
      ;;
  esac
done
