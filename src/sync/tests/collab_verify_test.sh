#!/usr/bin/env bash
# A collaboration workload of real y-websocket clients against `cnx serve`
# (snapshots every 150 operations, so compactions run while clients edit),
# then `cnx verify --target graph`: the Operation nodes (one event per group
# commit and document, decision 1470) match operations_log exactly, and
# sync_state holds one row per document for them.
#   collab_verify_test.sh BUILD_DIR
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../../.." && pwd)
cnx=$build/src/cli/cnx
peers=$build/peers/yjs
"$src/scripts/peer-setup.sh" yjs "$peers" >/dev/null
work=$(mktemp -d /tmp/cnx-opsverify-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() {
  : >"$work/serve.log"
  "$cnx" serve --data-dir "$work/data" --listen 127.0.0.1:${port:-0} --rate-limit 0 --collab-snapshot-every 150 \
    --pwhash-opslimit 1 --pwhash-memlimit-kib 8 >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if grep -q "is up: http://" "$work/serve.log"; then
      port=$(grep -o "is up: http://127.0.0.1:[0-9]*" "$work/serve.log" | head -1 | sed 's/.*://')
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "server exited"; exit 1; }
    sleep 0.1
  done
  echo "server did not come up"; cat "$work/serve.log"; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
api() {  # METHOD PATH TOKEN BODY
  curl -s -X "$1" "http://127.0.0.1:$port$2" -H "Content-Type: application/json" \
    ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}
}
field() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const v=JSON.parse(s)$1;if(v===undefined){console.error(s);process.exit(1)};console.log(v)})"; }
sql() { psql "$("$cnx" pg url --data-dir "$work/data")" -qAtc "$1"; }

start
tok=$(api POST /v1/signup "" '{"tenantName":"t","email":"a@example.com","password":"correct horse battery","displayName":"A"}' | field .token)
program=$(api POST /v1/programs "$tok" '{"name":"p"}' | field .id)
project=$(api POST "/v1/programs/$program/projects" "$tok" "{\"programId\":\"$program\",\"name\":\"x\"}" | field .id)
docs=""
for d in 1 2; do
  docs="$docs $(api POST "/v1/projects/$project/content" "$tok" "{\"projectId\":\"$project\",\"title\":\"d$d\",\"contentType\":\"text/plain\"}" | field .id)"
done
pids=""
for doc in $docs; do
  (cd "$peers" && node interop-client.mjs --url "ws://127.0.0.1:$port/v1/collab" --room "$doc" --param "token=$tok" \
    --clients 4 --ops 900 --timeout-ms 60000 >"$work/client-$doc.json") &
  pids="$pids $!"
done
for p in $pids; do wait "$p" || { cat "$work"/client-*.json; exit 1; }; done
for doc in $docs; do
  node -e "const r=JSON.parse(require('fs').readFileSync(process.argv[1]));if(!r.converged){console.error('not converged');process.exit(1)}" \
    "$work/client-$doc.json"
done
# Snapshots (and their compactions) ran while the clients edited: each
# document has a snapshot past its first operations, which are gone.
compacted=$(sql "SELECT count(DISTINCT s.document_id) FROM document_snapshots s WHERE s.upto_op > 0 AND NOT EXISTS
  (SELECT 1 FROM operations_log o WHERE o.document_id = s.document_id AND o.seq <= s.upto_op)")
echo "documents compacted while editing: $compacted, operations in the log: $(sql "SELECT count(*) FROM operations_log")"
[ "$compacted" = 2 ] || { echo "expected compactions while editing"; exit 1; }

# The last snapshots (and their compactions) run at shutdown, after the
# projection has stopped: their events wait in the slot until the next start.
# Verify after a quiet restart, as an operator would.
stop
start
for _ in $(seq 1 100); do
  [ "$(sql "SELECT count(*) FROM outbox")" = 0 ] && break
  sleep 0.2
done
sleep 2
state=$(sql "SELECT count(*) || ' ' || count(*) FILTER (WHERE aggregate_id IN (SELECT id::text FROM content_items)) FROM sync_state WHERE aggregate_type = 'operations_log'")
echo "sync_state rows of operations (all, of documents): $state"
[ "$state" = "2 2" ] || { echo "expected one sync_state row per document"; exit 1; }
# `cnx sync status` reads the same bookkeeping: nothing pending, failed or dead-lettered.
status=$("$cnx" sync status --pg-url "$("$cnx" pg url --data-dir "$work/data")")
echo "$status" | node -e "
let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{
  const r=JSON.parse(s), bad=r.syncState.filter(x=>x.status!=='synced'&&x.status!=='deleted');
  if(bad.length||r.deadLetters.length||!r.syncState.some(x=>x.target==='graph'&&x.status==='synced')){console.error('sync status: '+s);process.exit(1)}
})"
remaining=$(sql "SELECT count(*) FROM operations_log")
stop
out=$("$cnx" verify --target graph --data-dir "$work/data")
echo "$out" | head -c 2000; echo
echo "$out" | node -e "
let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{
  const r=JSON.parse(s), op=(r.labels||{}).Operation||{expected:0,missing:0,stale:0,extra:0};
  if(r.drift!==0){console.error('drift '+r.drift);process.exit(1)}
  if(op.expected!==Number(process.argv[1])){console.error('Operation expected '+op.expected+' != rows '+process.argv[1]);process.exit(1)}
})" "$remaining"
echo "verify: no drift, $remaining operations left after the snapshots"
