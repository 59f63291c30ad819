#!/usr/bin/env bash
# `cnx graph push` end to end: a database of the test cluster (CTest fixture
# pg) holding one tenant, program, project, content item and chunk with fixed
# ids and timestamps is pushed into the Bolt stub playing
# boltstub/cli_graph_push.script (schema as auto-commit statements, then one
# write transaction for the nodes and one for the relationships, GOODBYE) —
# once with flags, once with the CNX_NEO4J_* environment variables.
#   graph_push_test.sh CNX_BINARY TESTPG_DIR BOLTSTUB_DIR SCRIPT
set -euo pipefail
cnx=$1 testpg=$2 stub=$3 script=$4
export PGTZ=UTC  # timestamps in the rows' JSON are rendered in the session's zone
admin=$("$cnx" pg url --data-dir "$testpg" --db postgres)
db="graph_push_$$"
psql -X -q -d "$admin" -c "CREATE DATABASE $db TEMPLATE cnx_template" >/dev/null
trap 'psql -X -q -d "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
url=$("$cnx" pg url --data-dir "$testpg" --db "$db")
psql -X -q -v ON_ERROR_STOP=1 -d "$url" <<'SQL'
INSERT INTO tenants (id, name, slug, created_at) VALUES
  ('11111111-1111-4111-8111-111111111111', 'Acme', 'acme', '2026-01-02 03:04:05+00');
INSERT INTO programs (id, tenant_id, name, created_at) VALUES
  ('22222222-2222-4222-8222-222222222222', '11111111-1111-4111-8111-111111111111', 'Research', '2026-01-02 03:04:05+00');
INSERT INTO projects (id, tenant_id, program_id, name, created_at) VALUES
  ('33333333-3333-4333-8333-333333333333', '11111111-1111-4111-8111-111111111111',
   '22222222-2222-4222-8222-222222222222', 'Graphs', '2026-01-02 03:04:05+00');
INSERT INTO content_items (id, tenant_id, project_id, title, content_type, created_at) VALUES
  ('44444444-4444-4444-8444-444444444444', '11111111-1111-4111-8111-111111111111',
   '33333333-3333-4333-8333-333333333333', 'Notes', 'text/markdown', '2026-01-02 03:04:05+00');
INSERT INTO content_chunks (id, tenant_id, content_item_id, chunk_index, content, token_count, start_offset,
                            end_offset, content_hash) VALUES
  ('55555555-5555-4555-8555-555555555555', '11111111-1111-4111-8111-111111111111',
   '44444444-4444-4444-8444-444444444444', 0, 'hello', 1, 0, 5, 'h0');
SQL

echo "== flags =="
out=$(BOLTSTUB_ARGS="--strict-packstream" "$stub/with-stub.sh" "$script" 0 -- "$cnx" graph push --pg-url "$url" \
  --neo4j-url "bolt://127.0.0.1:{port}" --neo4j-user neo4j --neo4j-password secret --neo4j-database neo4j)
echo "$out"
grep -q '"nodes":5' <<<"$out" && grep -q '"relationships":4' <<<"$out" && grep -q '"transactions":2' <<<"$out"

echo "== environment =="
out=$(CNX_NEO4J_USER=neo4j CNX_NEO4J_PASSWORD=secret CNX_NEO4J_DATABASE=neo4j \
  "$stub/with-stub.sh" "$script" 0 -- bash -c 'CNX_NEO4J_URL=$BOLTSTUB_URI exec "$0" graph push --pg-url "$1"' \
  "$cnx" "$url")
echo "$out"
grep -q '"applied":9' <<<"$out"

echo "== refused without a Neo4j URL =="
if "$cnx" graph push --pg-url "$url" 2>/dev/null; then echo "push without --neo4j-url succeeded"; exit 1; fi
echo PASS
