#!/usr/bin/env bash
# libFuzzer (make fuzz): builds every target in fuzz/ with clang-15 in build-fuzz (keel's code under ASan and
# UBSan, with coverage), then runs each for FUZZ_SECONDS (60) from its seed corpus, fuzz/corpus/<target>.
# What a run finds goes to build-fuzz/corpus/<target>, never into the repository. Fails on a crash, a leak, a
# timeout or an out-of-memory; the input that did it is left in build-fuzz/crashes/: add it to the seed
# corpus, where the ordinary build runs it as a unit test (Fuzz.<target>.Corpus), and fix the code.
# FUZZ_TARGETS picks targets (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --fuzz
seconds=${FUZZ_SECONDS:-60}
targets=()
for src in fuzz/*.cpp; do
  name=$(basename "$src" .cpp)
  [ "$name" = standalone_main ] || targets+=("$name")
done
[ -n "${FUZZ_TARGETS:-}" ] && read -r -a targets <<<"$FUZZ_TARGETS"
echo "== fuzz: build (clang-15, ASan + UBSan + libFuzzer)"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=clang++-15 \
  -DCMAKE_CXX_FLAGS="-O1 -g1" -DKEEL_FUZZ=ON -DKEEL_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
failed=()
for t in "${targets[@]}"; do
  mkdir -p "build-fuzz/corpus/$t"
  log="build-fuzz/$t.log"
  status=0
  build-fuzz/"fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" "build-fuzz/corpus/$t" "fuzz/corpus/$t" \
    >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log" | tail -n 1)
  if [ "$status" -eq 0 ]; then
    echo "fuzz $t: ${seconds}s, ${runs:-?} executions, 0 crashes"
  else
    echo "fuzz $t: FAILED (exit $status) after ${runs:-?} executions; the input: build-fuzz/crashes/$t-*" >&2
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$log" | head -n 20 >&2 || tail -n 30 "$log" >&2
    failed+=("$t")
  fi
done
[ ${#failed[@]} -eq 0 ] || { echo "fuzz: crashes in ${failed[*]}" >&2; exit 1; }
