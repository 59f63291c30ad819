#!/usr/bin/env bash
# Real y-websocket clients (shared/tools/yjs/interop-client.mjs) against `cnx serve`:
#   interop_test.sh BUILD_DIR SCENARIO
# SCENARIO: clients2 | clients10 | clients50 | reconnect | restart | kill9 | hostile | presence | viewer | materialize
#           | rest (a REST PATCH of the body merges with a live client's edits)
#           | locks (document locks make the WebSocket read-only; finer locks are announced with their anchor,
#             refuse WebSocket updates that change the locked text, and guard REST writes)
# Exit 0 only when every check passed.
set -euo pipefail
build=$1 scenario=$2
src=$(cd "$(dirname "$0")/../../.." && pwd)
peers=$build/peers/yjs
"$src/scripts/peer-setup.sh" yjs "$peers" >/dev/null
# Tests run in parallel: each file is copied beside and renamed into place, so
# two copies never race on creating the same file.
for f in state_probe hostile viewer rest_merge locks; do
  tmp=$(mktemp "$peers/.$f.XXXXXX")
  cp "$src/src/collab/tests/$f.mjs" "$tmp" && chmod 644 "$tmp"
  mv -f "$tmp" "$peers/$f.mjs"
done
work=$(mktemp -d /tmp/cnx-collab-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() {
  # Emptied here, not only by the child's redirection: after a restart the loop
  # below must not see the previous server's "is up" line before the child has
  # truncated the file (it then read an empty port and the script stopped).
  : >"$work/serve.log"
  "$build/src/cli/cnx" serve --data-dir "$work/data" --listen 127.0.0.1:${port:-0} --rate-limit 0 \
    --pwhash-opslimit 1 --pwhash-memlimit-kib 8 ${extra_flags:-} >"$work/serve.log" 2>&1 &
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
api() {  # METHOD PATH TOKEN BODY
  curl -s -X "$1" "http://127.0.0.1:$port$2" -H "Content-Type: application/json" \
    ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"}
}
patch() {  # PATH TOKEN BODY: prints the HTTP status, the response in $work/patch.json
  curl -s -o "$work/patch.json" -w '%{http_code}' -X PATCH "http://127.0.0.1:$port$1" -H "Content-Type: application/json" \
    -H "If-Match: *" -H "Authorization: Bearer $2" -d "$3"
}
body_json() { node -e 'console.log(JSON.stringify({body: process.argv[1]}))' "$1"; }
chunks_text() { api GET "/v1/content/$doc/chunks" "$tok" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{process.stdout.write(JSON.parse(s).items.sort((a,b)=>a.chunkIndex-b.chunkIndex).map(c=>c.content).join(''))})"; }
field() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const v=JSON.parse(s)$1;if(v===undefined){console.error(s);process.exit(1)};console.log(v)})"; }

[ "$scenario" = materialize ] && extra_flags="--collab-text-root text"
start
tok=$(api POST /v1/signup "" '{"tenantName":"t","email":"a@example.com","password":"correct horse battery","displayName":"A"}' | field .token)
program=$(api POST /v1/programs "$tok" '{"name":"p"}' | field .id)
project=$(api POST "/v1/programs/$program/projects" "$tok" "{\"programId\":\"$program\",\"name\":\"x\"}" | field .id)
doc=$(api POST "/v1/projects/$project/content" "$tok" "{\"projectId\":\"$project\",\"title\":\"d\",\"contentType\":\"text/plain\"}" | field .id)
url="ws://127.0.0.1:$port/v1/collab"

interop() { (cd "$peers" && node interop-client.mjs --url "$url" --room "$doc" --param "token=$tok" --timeout-ms 50000 "$@"); }
probe() { (cd "$peers" && node state_probe.mjs --url "$url" --room "$doc" --token "$tok"); }
check() { echo "$1" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);if(!r.converged${2:-}){console.error('FAILED: '+s);process.exit(1)}})"; }

case $scenario in
  clients2)  r=$(interop --clients 2 --ops 600 --awareness --verify-persist); echo "$r"; check "$r" "||!r.persistVerified" ;;
  clients10) r=$(interop --clients 10 --ops 1500 --awareness --verify-persist); echo "$r"; check "$r" "||!r.persistVerified" ;;
  clients50) r=$(interop --clients 50 --ops 3000 --awareness --yield-every 10); echo "$r"; check "$r" ;;
  reconnect) r=$(interop --clients 6 --ops 1200 --awareness --reconnect --verify-persist); echo "$r"; check "$r" "||!r.persistVerified" ;;
  restart|kill9)
    r=$(interop --clients 4 --ops 800 --verify-persist); echo "$r"; check "$r" "||!r.persistVerified"
    before=$(probe); echo "before: ${before:0:120}"
    if [ "$scenario" = kill9 ]; then kill -9 "$pid"; else kill -TERM "$pid"; fi
    wait "$pid" 2>/dev/null || true
    if [ "$scenario" = kill9 ]; then  # the embedded PostgreSQL survives the kill; cnx adopts it
      sleep 0.5
    fi
    start
    after=$(probe); echo "after:  ${after:0:120}"
    node -e "const a=JSON.parse(process.argv[1]),b=JSON.parse(process.argv[2]);if(!a.sv||a.sv!==b.sv||a.json!==b.json){console.error('state differs after restart');process.exit(1)}" "$before" "$after"
    ;;
  materialize)
    r=$(interop --clients 3 --ops 600); check "$r"
    sleep 4
    text=$(probe | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{console.log(JSON.parse(JSON.parse(s).json).text.map(o=>o.insert).join('').length)})")
    chunks=$(api GET "/v1/content/$doc/chunks" "$tok")
    echo "$chunks" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);const n=r.items.reduce((a,c)=>a+c.content.length,0);if(r.items.length<1||n<1){console.error('no chunks: '+s);process.exit(1)}})"
    versions=$(api GET "/v1/content/$doc/versions" "$tok" | field .items.length)
    echo "text length $text, versions $versions"; [ "$versions" -ge 1 ]
    ;;
  viewer)
    uid=$(api POST /v1/users "$tok" '{"email":"v@example.com","password":"viewer password","role":"member"}' | field .id)
    api POST "/v1/projects/$project/members" "$tok" "{\"projectId\":\"$project\",\"userId\":\"$uid\",\"role\":\"viewer\"}" | field .id >/dev/null
    vtok=$(api POST /v1/sessions "" '{"email":"v@example.com","password":"viewer password"}' | field .token)
    r=$(interop --clients 2 --ops 200); check "$r"
    before=$(probe)
    (cd "$peers" && node viewer.mjs --url "$url" --room "$doc" --token "$vtok") || exit 1
    after=$(probe)
    node -e "const a=JSON.parse(process.argv[1]),b=JSON.parse(process.argv[2]);if(a.sv!==b.sv||a.json!==b.json){console.error('a viewer changed the document');process.exit(1)}" "$before" "$after"
    ;;
  presence)
    (cd "$peers" && node state_probe.mjs --url "$url" --room "$doc" --token "$tok" --hold-ms 3000) &
    holder=$!
    sleep 2
    here=$(api GET "/v1/content/$doc/presence" "$tok"); echo "while connected: $here"
    echo "$here" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const r=JSON.parse(s);if(r.items.length!==1||!r.items[0].selection||!('anchor' in r.items[0].selection)){console.error('presence missing');process.exit(1)}})"
    wait $holder
    sleep 2
    gone=$(api GET "/v1/content/$doc/presence" "$tok"); echo "after leaving: $gone"
    echo "$gone" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{if(JSON.parse(s).items.length!==0){console.error('presence not cleaned up');process.exit(1)}})"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/content/$doc/presence")" = 401 ]
    ;;
  hostile)
    r=$(interop --clients 2 --ops 300); check "$r"
    (cd "$peers" && node hostile.mjs --url "$url" --room "$doc" --token "$tok") || exit 1
    # A new seed: the first run's client ids already have ops in this room (Yjs would
    # re-roll its client id and its awareness would no longer match).
    r=$(interop --clients 3 --ops 600 --seed 2 --awareness --verify-persist); echo "$r"; check "$r" "||!r.persistVerified"
    before=$(probe)
    kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
    start
    after=$(probe)
    node -e "const a=JSON.parse(process.argv[1]),b=JSON.parse(process.argv[2]);if(!a.sv||a.sv!==b.sv||a.json!==b.json){console.error('state differs after restart');process.exit(1)}" "$before" "$after"
    ;;
  rest)
    initial=$'first line\nsecond line\nthird line\n'
    [ "$(patch "/v1/content/$doc" "$tok" "$(body_json "$initial")")" = 200 ] || { cat "$work/patch.json"; exit 1; }
    (cd "$peers" && node rest_merge.mjs --url "$url" --room "$doc" --token "$tok" --initial "$initial" \
      --expect "third line, edited by REST") >"$work/client.out" &
    client=$!
    for _ in $(seq 1 200); do grep -q ready "$work/client.out" && break; sleep 0.1; done
    grep -q ready "$work/client.out" || { cat "$work/client.out"; exit 1; }
    # The REST writer's base is the current version (the text before the live edits).
    code=$(patch "/v1/content/$doc" "$tok" "$(body_json $'first line\nsecond line\nthird line, edited by REST\n')")
    echo "PATCH: $code $(head -c 300 "$work/patch.json")"
    [ "$code" = 200 ]
    wait $client || { cat "$work/client.out"; exit 1; }
    final=$(tail -1 "$work/client.out" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(JSON.parse(s).text))")
    echo "client's text: $(echo "$final" | head -c 200 | tr '\n' '|')"
    node -e "const t=process.argv[1];if(!/^LIVE first line[0-9]+z{5}\nsecond line\nthird line, edited by REST\n?$/.test(t)){console.error('edits lost: '+JSON.stringify(t));process.exit(1)}" "$final"
    # Materialised (debounce 2 s): the current version is the merged text.
    for _ in $(seq 1 50); do [ "$(chunks_text)" = "$final" ] && break; sleep 0.2; done
    [ "$(chunks_text)" = "$final" ] || { echo "materialised text differs: $(chunks_text)"; exit 1; }
    # Ingestion's upsert by source (POST with an existing sourceUrl) merges the same way.
    [ "$(patch "/v1/content/$doc" "$tok" '{"sourceUrl":"https://example.com/runbook"}')" = 200 ]
    tail -1 "$work/client.out" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(JSON.parse(s).text))" >"$work/v1.txt"
    (cd "$peers" && node rest_merge.mjs --url "$url" --room "$doc" --token "$tok" --initial-file "$work/v1.txt" \
      --expect "then by ingest") >"$work/client2.out" &
    client=$!
    for _ in $(seq 1 200); do grep -q ready "$work/client2.out" && break; sleep 0.1; done
    grep -q ready "$work/client2.out" || { cat "$work/client2.out"; exit 1; }
    upsert=$(node -e "const fs=require('fs');const t=fs.readFileSync(process.argv[1],'utf8').replace('edited by REST','edited by REST, then by ingest');console.log(JSON.stringify({projectId:process.argv[2],title:'d',contentType:'text/plain',sourceUrl:'https://example.com/runbook',body:t}))" "$work/v1.txt" "$project")
    code=$(curl -s -o "$work/upsert.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/projects/$project/content" \
      -H "Content-Type: application/json" -H "Authorization: Bearer $tok" -d "$upsert")
    echo "upsert: $code $(head -c 120 "$work/upsert.json")"
    [ "$code" = 200 ] || [ "$code" = 201 ]
    grep -q "\"$doc\"" "$work/upsert.json"
    wait $client || { cat "$work/client2.out"; exit 1; }
    final2=$(tail -1 "$work/client2.out" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(JSON.parse(s).text))")
    echo "client's text: $(echo "$final2" | head -c 200 | tr '\n' '|')"
    node -e "const t=process.argv[1];if(!/^LIVE LIVE first line[0-9]+z{5}[0-9]+z{5}\nsecond line\nthird line, edited by REST, then by ingest\n?$/.test(t)){console.error('edits lost: '+JSON.stringify(t));process.exit(1)}" "$final2"
    ;;
  locks)
    uid=$(api POST /v1/users "$tok" '{"email":"b@example.com","password":"editor password","role":"member"}' | field .id)
    api POST "/v1/projects/$project/members" "$tok" "{\"projectId\":\"$project\",\"userId\":\"$uid\",\"role\":\"editor\"}" | field .id >/dev/null
    btok=$(api POST /v1/sessions "" '{"email":"b@example.com","password":"editor password"}' | field .token)
    (cd "$peers" && node locks.mjs --url "$url" --api "http://127.0.0.1:$port" --room "$doc" --a "$tok" --b "$btok") || exit 1
    # Finer locks guard REST body writes by range; document locks every write.
    doc2=$(api POST "/v1/projects/$project/content" "$tok" "{\"projectId\":\"$project\",\"title\":\"d2\",\"contentType\":\"text/plain\"}" | field .id)
    [ "$(patch "/v1/content/$doc2" "$tok" "$(body_json $'0123456789 locked paragraph\nfree tail\n')")" = 200 ]
    api POST /v1/locks "$tok" "{\"resourceType\":\"content_item\",\"resourceId\":\"$doc2\",\"granularity\":\"paragraph\",\"context\":{\"start\":0,\"end\":10}}" | field .id >/dev/null
    code=$(patch "/v1/content/$doc2" "$btok" "$(body_json $'01X3456789 locked paragraph\nfree tail\n')")
    echo "B changes the locked range: $code"; [ "$code" = 409 ]; grep -q lock-conflict "$work/patch.json"
    code=$(patch "/v1/content/$doc2" "$btok" "$(body_json $'0123456789 locked paragraph\nfree tail, changed by B\n')")
    echo "B changes outside it: $code"; [ "$code" = 200 ]
    code=$(patch "/v1/content/$doc2" "$tok" "$(body_json $'0123 holder edits\n')")
    echo "the holder changes it: $code"; [ "$code" = 200 ]
    api POST /v1/locks "$tok" "{\"resourceType\":\"content_item\",\"resourceId\":\"$doc2\",\"granularity\":\"document\"}" | field .id >/dev/null
    code=$(patch "/v1/content/$doc2" "$btok" '{"title":"renamed by B"}')
    echo "B renames under a document lock: $code"; [ "$code" = 409 ]
    code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$port/v1/content/$doc2" -H "If-Match: *" -H "Authorization: Bearer $btok")
    echo "B deletes under a document lock: $code"; [ "$code" = 409 ]
    ;;
  *) echo "unknown scenario $scenario"; exit 2 ;;
esac
echo PASS
