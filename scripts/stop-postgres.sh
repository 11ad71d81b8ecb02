#!/usr/bin/env bash
# Stops and removes a cluster started by start-postgres.sh: scripts/stop-postgres.sh DIR
set -uo pipefail
dir=${1:?usage: stop-postgres.sh DIR}
[ -d "$dir/data" ] || exit 0
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
rm -rf "$dir"
