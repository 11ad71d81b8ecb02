#!/usr/bin/env bash
# The whole test suite: unit tests (ctest) and end-to-end tests (pytest against build/keel), on SQLite and on
# a throwaway PostgreSQL cluster that this script starts on loopback and removes afterwards; as root, also the
# fleet tests (tests/fleet: keel processes in network namespaces, with a PostgreSQL of their own).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}

eval "$(scripts/start-postgres.sh | sed 's/^/export /')"
trap 'scripts/stop-postgres.sh "$KEEL_TEST_PG_DIR"' EXIT
export KEEL_REQUIRE_PG=1 KEEL_BIN="$PWD/$build/keel"

echo "== unit tests (SQLite and PostgreSQL)"
ctest --test-dir "$build" --output-on-failure -j 2

echo "== end-to-end tests (SQLite and PostgreSQL)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/e2e "$@"

# A fleet in network namespaces (router, PostgreSQL, four keel hosts, a client): it needs root for `ip netns`.
if [ "$(id -u)" -eq 0 ]; then
  echo "== fleet tests (network namespaces, one PostgreSQL, four keel processes)"
  /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/fleet
else
  echo "== fleet tests skipped: they build network namespaces and need root"
fi
