#!/usr/bin/env bash
# bench/graph/cte.sh BUILD_DIR: the 2-hop neighbourhood query on the same
# 1,000,000-edge graph in the embedded store (graph_bench) and as a recursive
# CTE in PostgreSQL 15 (the test cluster, started here), same start nodes, in
# one run. Prints p50/p99 of both and the ratio.
#   env: NODES (100000), EDGES (1000000), QUERIES (2000)
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
nodes=${NODES:-100000} edges=${EDGES:-1000000} queries=${QUERIES:-2000}
work=$(mktemp -d "${TMPDIR:-/tmp}/cnx_graph_cte.XXXXXX")
chmod 755 "$work"
db="graph_cte_$$"
cleanup() {
  [ -n "${admin:-}" ] && psql -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  "$build/src/schema/cnx_testpg" stop "$build/testpg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== embedded store (graph_bench) =="
"$build/bench/graph/graph_bench" --dir "$work/store" --nodes "$nodes" --edges "$edges" --queries "$queries" |
  grep -E "^apply|2-hop outgoing neighbourhood \(after load\)" | tee "$work/store.txt"
"$build/bench/graph/graph_bench" --emit-csv "$work/csv" --nodes "$nodes" --edges "$edges" --queries "$queries" >/dev/null

echo "== PostgreSQL recursive CTE =="
"$build/src/schema/cnx_testpg" start "$build/testpg" >/dev/null
admin=$("$build/src/cli/cnx" pg url --data-dir "$build/testpg" --db postgres)
psql -X -q -d "$admin" -c "CREATE DATABASE $db" >/dev/null
url=$("$build/src/cli/cnx" pg url --data-dir "$build/testpg" --db "$db")
psql -X -q -d "$url" >/dev/null <<SQL
CREATE TABLE edges (id text, type text, start_id text, end_id text, weight double precision);
\copy edges FROM '$work/csv/edges.csv' CSV HEADER
CREATE INDEX edges_start ON edges (start_id) INCLUDE (end_id);
CREATE TABLE starts (i serial PRIMARY KEY, id text);
\copy starts (id) FROM '$work/csv/start_ids.csv' CSV HEADER
VACUUM ANALYZE edges;
ANALYZE starts;
SQL
n_starts=$(psql -X -At -d "$url" -c "SELECT count(*) FROM starts")
# The embedded store's query: distinct nodes reachable by 1..2 outgoing hops, at most 1,000.
cat > "$work/two_hop.sql" <<SQL
\set i random(1, $n_starts)
WITH RECURSIVE walk(node, depth) AS (
  SELECT id, 0 FROM starts WHERE i = :i
  UNION
  SELECT e.end_id, w.depth + 1 FROM walk w JOIN edges e ON e.start_id = w.node WHERE w.depth < 2
)
SELECT count(*) FROM (SELECT DISTINCT node FROM walk WHERE depth > 0 LIMIT 1000) n;
SQL
(cd "$work" && pgbench -n -c1 -t "$queries" -f two_hop.sql -l --log-prefix=cte "$url" >/dev/null 2>&1)
sort -n -k3 "$work"/cte.* | awk -v n="$queries" '{ a[NR] = $3 } END {
  p50 = a[int(NR * 0.50) + 1]; p99 = a[int(NR * 0.99) + 1];
  printf "2-hop recursive CTE (PostgreSQL 15, one connection): %d queries, wall p50 %.1f us p99 %.1f us\n", NR, p50, p99 }' |
  tee "$work/cte.txt"

store_p50=$(grep -o 'wall p50 [0-9.]*' "$work/store.txt" | awk '{print $3}')
store_p99=$(grep -o 'p99 [0-9.]* us, CPU' "$work/store.txt" | awk '{print $2}')
cte_p50=$(grep -o 'wall p50 [0-9.]*' "$work/cte.txt" | awk '{print $3}')
cte_p99=$(grep -o 'p99 [0-9.]* us$' "$work/cte.txt" | awk '{print $2}')
awk -v a="$store_p50" -v b="$cte_p50" -v c="$store_p99" -v d="$cte_p99" 'BEGIN {
  printf "ratio CTE / embedded store: p50 %.1fx, p99 %.1fx (load: %s)\n", b / a, d / c, "'"$(cut -d' ' -f1-3 /proc/loadavg)"'" }'
