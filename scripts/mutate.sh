#!/usr/bin/env bash
# Mutation testing with the curated mutants in mutants/: does the test suite catch each planted bug?
#
#   scripts/mutate.sh [--baseline] [mutants/NN-name.patch | NN ...]     (make mutate: every mutant)
#
# For each mutant (every mutants/*.patch, or those named; "07b" stands for mutants/07b-*.patch): apply it to
# the working tree, rebuild incrementally, run only the tests its header names, record the result, and revert
# it. A mutant's header (lines before the diff, which `git apply` skips):
#
#   # killed by: <pytest node id> [<pytest node id> ...] -- <what is wrong>
#   # ctest: <regex>                                       (optional: unit tests, `ctest -R <regex>`)
#
# A node id may carry its backend ("...::test_x[sqlite]"); one without runs on both. A mutant killed by unit
# tests alone says `# killed by: ctest -- ...`. Results:
#   killed     a named test failed (or the tests hung past MUTATE_TIMEOUT seconds, 300 by default)
#   survived   every named test passed: the suite misses this bug
#   stillborn  the mutant does not build (not counted as killed)
#   error      the patch does not apply, or the tests could not run (a wrong node id): fix the mutant
# The kill rate is killed/total against a bar of 95%. It exits non-zero below the bar, on any error, or when
# a mutant of the original table (01-08 with 03b, 06b, 07b) survives. PostgreSQL (scripts/start-postgres.sh)
# is started only when a selected mutant names a PostgreSQL test, and stopped at the end. --baseline first
# runs every named test on the clean tree (they must pass there, or a "kill" means nothing).
#
# The tree under src/ must be clean: mutants are reverted with `git checkout`, so local edits would be lost.
# Whatever happens (a failure, Ctrl-C), the current mutant is reverted and the clean tree rebuilt on exit.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
root=$PWD
build=${BUILD_DIR:-build}
timeout_s=${MUTATE_TIMEOUT:-300}
bar=95
original=(01 02 03 03b 04 05 06 06b 07 07b 08)
py=/usr/bin/python3
[ -x "$py" ] || py=python3

baseline=0
selected=()
for arg in "$@"; do
  case "$arg" in
    --baseline) baseline=1 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "mutate: unknown option $arg" >&2; exit 2 ;;
    *.patch) selected+=("$arg") ;;
    *)
      matches=(mutants/"$arg"-*.patch)
      [ -e "${matches[0]}" ] || { echo "mutate: no mutant $arg in mutants/" >&2; exit 2; }
      selected+=("${matches[@]}") ;;
  esac
done
[ ${#selected[@]} -gt 0 ] || selected=(mutants/*.patch)
for p in "${selected[@]}"; do
  [ -f "$p" ] || { echo "mutate: no such file $p" >&2; exit 2; }
done

if [ -n "$(git status --porcelain -- src)" ]; then
  echo "mutate: src/ has uncommitted changes; commit or stash them first (mutants are reverted with git checkout):" >&2
  git status --short -- src >&2
  exit 2
fi

# --- the header ---------------------------------------------------------------------------------------------
header_line() {  # header_line FILE KEY: the text after "# KEY:" in the lines before the diff
  awk -v key="# $2:" '/^diff --git /{exit} index($0, key) == 1 {print substr($0, length(key) + 1); exit}' "$1"
}
pytest_ids() {  # the node ids of a mutant (words before " -- " on its killed-by line)
  local line
  line=$(header_line "$1" "killed by")
  line=${line%% -- *}
  local -a words
  read -ra words <<<"$line"  # read, not $line: a node id's [sqlite] must not glob
  for w in "${words[@]}"; do
    [ "$w" = "--" ] && break
    [ "$w" = ctest ] && continue  # "the unit tests on the # ctest: line"
    printf '%s\n' "$w"
  done
}
ctest_regex() { header_line "$1" ctest | sed 's/^ *//; s/ *$//'; }
description() {
  local line
  line=$(header_line "$1" "killed by")
  [[ "$line" == *" -- "* ]] && printf '%s' "${line#* -- }"
}
name_of() { basename "$1" .patch; }
is_original() {
  local n
  n=$(name_of "$1")
  n=${n%%-*}
  for o in "${original[@]}"; do [ "$n" = "$o" ] && return 0; done
  return 1
}

for p in "${selected[@]}"; do
  if [ -z "$(pytest_ids "$p")" ] && [ -z "$(ctest_regex "$p")" ]; then
    echo "mutate: $p names no test (# killed by: <pytest ids> -- ..., and/or # ctest: <regex>)" >&2
    exit 2
  fi
  # Reverting is `git checkout` of the files it touched: only src/, which must be clean, is fair game.
  outside=$(git apply --numstat "$p" 2>/dev/null | cut -f3 | grep -v '^src/' | tr '\n' ' ')
  if [ -n "$outside" ] || [ -z "$(git apply --numstat "$p" 2>/dev/null)" ]; then
    echo "mutate: $p must be a diff of files under src/ (it touches: ${outside:-nothing})" >&2
    exit 2
  fi
  while read -r id; do
    if [[ "$id" != tests/*::* ]]; then
      echo "mutate: $p: '$id' is not a pytest node id (tests/...py::test_name[param])" >&2
      exit 2
    fi
  done < <(pytest_ids "$p")
done

# --- clean up, whatever happens -----------------------------------------------------------------------------
exec 3>&2  # the terminal: a trap may run while a command's output goes to a log
applied=""  # the files of the mutant now in the tree
pg_dir=""
child=""    # the tests running now (timeout's process group: pytest and the keel processes it started)
log=$(mktemp -d --suffix=-keel-mutate)  # under $TMPDIR (or /tmp), named tmp.<random>-keel-mutate
revert() {
  if [ -n "$applied" ]; then
    # shellcheck disable=SC2086
    git checkout -- $applied 2>/dev/null || git apply -R "$current" 2>/dev/null
    applied=""
  fi
}
build_keel() {  # an incremental build of every target (keel, the unit tests), its output to stdout
  CCACHE_BASEDIR=${CCACHE_BASEDIR:-$(dirname "$root")} nice -n 10 cmake --build "$build" -j "${JOBS:-2}"
}
# Runs a command in the background under `timeout` (its own process group) and waits for it: a signal to
# this script interrupts the wait at once, and finish() ends the whole group.
limited() {
  timeout "$timeout_s" "$@" &
  child=$!
  wait "$child"
  local rc=$?
  child=""
  return $rc
}
# shellcheck disable=SC2317  # run by the traps
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$child" ]; then
    kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
    # keel stops gracefully on SIGTERM; whatever of that group is left after 5 s is killed.
    for _ in $(seq 50); do
      kill -0 -- "-$child" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$child" 2>/dev/null
  fi
  if [ -n "$applied" ]; then
    echo "mutate: reverting $(name_of "$current")" >&3
    revert
    echo "mutate: rebuilding the clean tree" >&3
    build_keel >"$log/clean-build.log" 2>&1 || echo "mutate: the clean rebuild failed: $log/clean-build.log" >&3
  fi
  if [ -n "$pg_dir" ]; then scripts/stop-postgres.sh "$pg_dir" >&3 2>&3; fi
  exit "$rc"
}
trap finish EXIT
trap 'echo >&3; echo "mutate: interrupted" >&3; exit 130' INT TERM

# --- the clean build, and PostgreSQL when a mutant needs it -------------------------------------------------
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null || exit 1
fi
echo "== building the clean tree ($build)"
if ! build_keel >"$log/clean-build.log" 2>&1; then
  tail -n 30 "$log/clean-build.log" >&2
  echo "mutate: the clean tree does not build" >&2
  exit 1
fi

all_ids=()
any_ctest=0
for p in "${selected[@]}"; do
  mapfile -t ids < <(pytest_ids "$p")
  all_ids+=("${ids[@]}")
  [ -n "$(ctest_regex "$p")" ] && any_ctest=1
done
mapfile -t all_ids < <(printf '%s\n' "${all_ids[@]}" | sed '/^$/d' | sort -u)

need_pg=0
if [ ${#all_ids[@]} -gt 0 ]; then
  # Collecting checks every node id exists, and shows which ones run on PostgreSQL.
  if ! KEEL_BIN="$root/$build/keel" "$py" -m pytest -q -p no:cacheprovider --collect-only "${all_ids[@]}" \
    >"$log/collect.log" 2>&1; then
    cat "$log/collect.log" >&2
    echo "mutate: a mutant names a test that does not exist" >&2
    exit 2
  fi
  grep -Eq '::.*\[([^]]*-)?postgres(-[^]]*)?\]' "$log/collect.log" && need_pg=1
fi
if [ $any_ctest -eq 1 ]; then
  for p in "${selected[@]}"; do
    re=$(ctest_regex "$p")
    [ -n "$re" ] || continue
    if ! names=$(ctest --test-dir "$build" -N -R "$re" 2>&1) || ! grep -q 'Test *#' <<<"$names"; then
      echo "mutate: $(name_of "$p"): no unit test matches # ctest: $re" >&2
      exit 2
    fi
    grep -qi postgres <<<"$names" && need_pg=1
  done
fi
if [ $need_pg -eq 1 ]; then
  echo "== starting PostgreSQL (a mutant names a PostgreSQL test)"
  pg_env=$(scripts/start-postgres.sh) || exit 1
  while IFS= read -r line; do
    [ -n "$line" ] && export "${line?}"
  done <<<"$pg_env"
  pg_dir=$KEEL_TEST_PG_DIR
  export KEEL_REQUIRE_PG=1  # a PostgreSQL test must run, never skip
else
  unset KEEL_TEST_PG_URL KEEL_REQUIRE_PG
fi
export KEEL_BIN="$root/$build/keel"

run_tests() {  # run_tests PATCH LOGFILE: 0 all passed, 1 a test failed (or hung), 2 could not run
  local p=$1 out=$2 re rc
  local -a ids
  re=$(ctest_regex "$p")
  mapfile -t ids < <(pytest_ids "$p")
  : >"$out"
  if [ -n "$re" ]; then
    limited ctest --test-dir "$build" --output-on-failure --no-tests=error -R "$re" >>"$out" 2>&1
    rc=$?
    [ $rc -ne 0 ] && return 1
  fi
  if [ ${#ids[@]} -gt 0 ]; then
    limited nice -n 10 "$py" -m pytest -q -x -p no:cacheprovider "${ids[@]}" >>"$out" 2>&1
    rc=$?
    case $rc in
      0) return 0 ;;
      1 | 124) return 1 ;;  # a test failed; 124: it hung past the timeout
      *) return 2 ;;        # interrupted, internal or usage error, nothing collected
    esac
  fi
  return 0
}

if [ $baseline -eq 1 ]; then
  echo "== baseline: the named tests on the clean tree"
  for p in "${selected[@]}"; do
    if ! run_tests "$p" "$log/baseline-$(name_of "$p").log"; then
      tail -n 30 "$log/baseline-$(name_of "$p").log" >&2
      echo "mutate: the tests named by $(name_of "$p") fail on the clean tree" >&2
      exit 1
    fi
  done
fi

# --- the mutants --------------------------------------------------------------------------------------------
names=() paths=() results=() secs=()
current=""
total=${#selected[@]}
i=0
for p in "${selected[@]}"; do
  i=$((i + 1))
  name=$(name_of "$p")
  start=$SECONDS
  printf '== [%d/%d] %s ... ' "$i" "$total" "$name"
  current=$p
  files=$(git apply --numstat "$p" 2>/dev/null | cut -f3 | tr '\n' ' ')
  applied=$files  # first: an interrupt from here on reverts it (git checkout of files it left alone is harmless)
  if [ -z "$files" ] || ! git apply "$p" 2>"$log/$name.apply.log"; then
    applied=""
    result=error
    echo "(the patch does not apply)" >>"$log/$name.apply.log"
  else
    rm -f "$log/$name.apply.log"
    if ! build_keel >"$log/$name.build.log" 2>&1; then
      result=stillborn
    else
      run_tests "$p" "$log/$name.log"
      case $? in
        0) result=survived ;;
        1) result=killed ;;
        *) result=error ;;
      esac
    fi
    revert
  fi
  names+=("$name") paths+=("$p") results+=("$result") secs+=($((SECONDS - start)))
  echo "$result ($((SECONDS - start)) s)"
done
current=""

echo "== rebuilding the clean tree"
if ! build_keel >"$log/clean-build.log" 2>&1; then
  echo "mutate: the clean rebuild failed: $log/clean-build.log" >&2
  exit 1
fi

# --- the table ----------------------------------------------------------------------------------------------
killed=0 survived=0 stillborn=0 errors=0 failed_original=()
echo
printf '%-52s %-10s %7s\n' "mutant" "result" "seconds"
printf '%-52s %-10s %7s\n' "------" "------" "-------"
for n in "${!names[@]}"; do
  printf '%-52s %-10s %7s\n' "${names[$n]}" "${results[$n]}" "${secs[$n]}"
  case ${results[$n]} in
    killed) killed=$((killed + 1)) ;;
    survived)
      survived=$((survived + 1))
      is_original "${names[$n]}" && failed_original+=("${names[$n]}") ;;
    stillborn) stillborn=$((stillborn + 1)) ;;
    *) errors=$((errors + 1)) ;;
  esac
done
rate=$((total > 0 ? killed * 100 / total : 0))
echo
echo "kill rate: $killed/$total ($rate%), bar >= $bar%   (survived $survived, stillborn $stillborn, error $errors)"
echo "logs: $log"
status=0
if [ "$rate" -lt "$bar" ]; then
  echo "mutate: the kill rate is below the bar" >&2
  status=1
fi
if [ ${#failed_original[@]} -gt 0 ]; then
  echo "mutate: mutants of the original table survived: ${failed_original[*]}" >&2
  status=1
fi
if [ $errors -gt 0 ]; then
  echo "mutate: $errors mutant(s) could not be judged (see the logs)" >&2
  status=1
fi
for n in "${!names[@]}"; do
  [ "${results[$n]}" = survived ] && echo "  survived: ${names[$n]} -- $(description "${paths[$n]}")"
done
exit $status
