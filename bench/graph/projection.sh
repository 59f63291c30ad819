#!/usr/bin/env bash
# bench/graph/projection.sh BUILD_DIR: projection throughput (events/s) from
# change events through the bus and the graph projector into the embedded store,
# sync_state in PostgreSQL, beside the raw store apply and PostgreSQL's own
# INSERT of the same rows in the same run (projection_bench.cc says how).
#   env: ITEMS (2000), CHUNKS (10 per item), WORKERS (64, as cnx serve)
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cnx_projection.XXXXXX")
cleanup() {
  "$build/src/schema/cnx_testpg" stop "$build/testpg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
"$build/src/schema/cnx_testpg" start "$build/testpg" >/dev/null
echo "uptime: $(uptime)"
CNX_TEST_PG_DIR="$build/testpg" "$build/bench/graph/projection_bench" --dir "$work" \
  --items "${ITEMS:-2000}" --chunks "${CHUNKS:-10}" --workers "${WORKERS:-64}"
echo "uptime: $(uptime)"
