#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 cluster on 127.0.0.1 in a temporary directory and prints two lines:
#   KEEL_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/postgres
#   KEEL_TEST_PG_DIR=/tmp/tmp.abc123               (pass it to scripts/stop-postgres.sh)
# PostgreSQL refuses to run as root, so as root the cluster runs as the postgres user.
# --durable: PostgreSQL's own durability (fsync and full_page_writes on, as a production server), for
# benchmarks; without it the cluster is a scratch one (fsync off). Run it under `taskset` to pin the server.
# KEEL_PG_EXTRA_OPTIONS adds server settings ("-c shared_preload_libraries=pg_stat_statements" to profile).
set -euo pipefail
durability="-c fsync=off -c full_page_writes=off"
case "${1:-}" in
  "") ;;
  --durable) durability="-c fsync=on -c full_page_writes=on" ;;
  *) echo "usage: start-postgres.sh [--durable]" >&2; exit 2 ;;
esac

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "start-postgres: PostgreSQL server binaries not found (run scripts/setup.sh)" >&2; exit 1; }

dir=$(mktemp -d)
chmod 755 "$dir"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  chown postgres:postgres "$dir"
  as_pg=(runuser -u postgres --)
fi

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# A scratch cluster by default: fsync off makes the test suite faster and loses nothing a test relies on
# (keel's own durability tests kill keel, not the database server).
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir $durability -c max_connections=300 ${KEEL_PG_EXTRA_OPTIONS:-}" \
  start >/dev/null || { cat "$dir/server.log" >&2; exit 1; }

echo "KEEL_TEST_PG_URL=postgresql://postgres@127.0.0.1:$port/postgres"
echo "KEEL_TEST_PG_DIR=$dir"
