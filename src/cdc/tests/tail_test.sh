#!/usr/bin/env bash
# `cnx cdc tail` against the test cluster: a committed outbox insert (and an
# update of it) is printed as begin / relation / insert / update / commit JSON
# lines; its delete is not, since the publication carries inserts and updates
# only (migration 0012: the relay's deletes of relayed rows are not streamed).
# Usage: tail_test.sh CNX PSQL TEST_PG_DIR
set -euo pipefail
cnx=$1 psql=$2 pgdir=$3
admin=$("$cnx" pg url --data-dir "$pgdir" --db postgres)
db="cdc_tail_$$"
"$psql" -X -q -d "$admin" -c "CREATE DATABASE $db TEMPLATE cnx_template"
url=$("$cnx" pg url --data-dir "$pgdir" --db "$db")
out=$(mktemp)
err=$(mktemp)
cleanup() {
  rm -f "$out" "$err"
  "$psql" -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

"$cnx" cdc tail --pg-url "$url" --limit 5 --idle-exit 20 > "$out" 2> "$err" &
tail_pid=$!
# Write only once tail streams: while CREATE_REPLICATION_SLOT waits for the
# cluster's running transactions the slot is already listed, but a change
# committed before it is consistent is not in its stream.
for _ in $(seq 600); do
  grep -q "tailing publication" "$err" && break
  sleep 0.1
done
"$psql" -X -q -d "$url" -c "BEGIN; INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('projects', 'p-tail', 'projects.created', '{\"op\": \"c\"}'); UPDATE outbox SET type = 'projects.touched' WHERE aggregateid = 'p-tail'; DELETE FROM outbox WHERE aggregateid = 'p-tail'; COMMIT;"
wait "$tail_pid"
kinds=$(grep -o '"kind":"[a-z_]*"' "$out" | tr '\n' ' ')
expected='"kind":"begin" "kind":"relation" "kind":"insert" "kind":"update" "kind":"commit" '
if [ "$kinds" != "$expected" ]; then
  echo "unexpected output: $kinds" >&2
  cat "$out" "$err" >&2
  exit 1
fi
grep -q '"name":"aggregateid","type":"varchar","value":"p-tail"' "$out"
echo "1 passed, 0 failed"
