#!/usr/bin/env bash
# `cnx cdc tail` against the test cluster: a committed outbox insert (and its
# delete) is printed as begin / relation / insert / delete / commit JSON lines.
# Usage: tail_test.sh CNX PSQL TEST_PG_DIR
set -euo pipefail
cnx=$1 psql=$2 pgdir=$3
admin=$("$cnx" pg url --data-dir "$pgdir" --db postgres)
db="cdc_tail_$$"
"$psql" -X -q -d "$admin" -c "CREATE DATABASE $db TEMPLATE cnx_template"
url=$("$cnx" pg url --data-dir "$pgdir" --db "$db")
out=$(mktemp)
cleanup() {
  rm -f "$out"
  "$psql" -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
}
trap cleanup EXIT

"$cnx" cdc tail --pg-url "$url" --limit 5 --idle-exit 20 > "$out" 2>/dev/null &
tail_pid=$!
# The temporary slot exists once the walsender for it is up.
for _ in $(seq 100); do
  n=$("$psql" -X -At -d "$admin" -c "SELECT count(*) FROM pg_replication_slots WHERE database = '$db'")
  [ "$n" = 1 ] && break
  sleep 0.1
done
"$psql" -X -q -d "$url" -c "BEGIN; INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('projects', 'p-tail', 'projects.created', '{\"op\": \"c\"}'); DELETE FROM outbox WHERE aggregateid = 'p-tail'; COMMIT;"
wait "$tail_pid"
kinds=$(grep -o '"kind":"[a-z_]*"' "$out" | tr '\n' ' ')
expected='"kind":"begin" "kind":"relation" "kind":"insert" "kind":"delete" "kind":"commit" '
if [ "$kinds" != "$expected" ]; then
  echo "unexpected output: $kinds" >&2
  cat "$out" >&2
  exit 1
fi
grep -q '"name":"aggregateid","type":"varchar","value":"p-tail"' "$out"
echo "1 passed, 0 failed"
