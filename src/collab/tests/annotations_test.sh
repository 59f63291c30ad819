#!/usr/bin/env bash
# Annotations anchored with Yjs relative positions, end to end (docs/collab.md):
#   annotations_test.sh BUILD_DIR
# A REST annotation on a document's text, then a real y-websocket client edits
# before the anchor: after materialisation the annotation's offsets (and chunk)
# follow, and the stored relative positions resolve to the same offsets in Yjs.
# Also: replies (parentId), resolve/unresolve, moving the range with PATCH,
# out-of-range offsets. Exit 0 only when every check passed.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../../.." && pwd)
peers=$build/peers/yjs
"$src/scripts/peer-setup.sh" yjs "$peers" >/dev/null
tmp=$(mktemp "$peers/.annotation_client.XXXXXX")  # renamed into place: tests run in parallel
cp "$src/src/collab/tests/annotation_client.mjs" "$tmp" && chmod 644 "$tmp"
mv -f "$tmp" "$peers/annotation_client.mjs"
work=$(mktemp -d /tmp/cnx-annot-XXXXXX)
. "$src/src/collab/tests/serve_lib.sh"
trap cleanup EXIT
start_serve

tok=$(js "$(api POST /v1/signup "" '{"tenantName":"t","email":"a@example.com","password":"correct horse battery","displayName":"A"}')" r.token)
program=$(js "$(api POST /v1/programs "$tok" '{"name":"p"}')" r.id)
project=$(js "$(api POST "/v1/programs/$program/projects" "$tok" "{\"programId\":\"$program\",\"name\":\"x\"}")" r.id)
text='The quick brown fox jumps over the lazy dog. 😀 Émoji and CJK 中文 sit before the end.'
doc=$(js "$(api POST "/v1/projects/$project/content" "$tok" "{\"projectId\":\"$project\",\"title\":\"d\",\"contentType\":\"text/plain\",\"body\":\"$text\"}")" r.id)
url="ws://127.0.0.1:$port/v1/collab"
client() { (cd "$peers" && node annotation_client.mjs --url "$url" --room "$doc" --token "$tok" --root content "$@"); }
index_of() { node -e "console.log(process.argv[1].indexOf(process.argv[2]))" "$1" "$2"; }  # UTF-16 index

# 1. Anchor "brown" (UTF-16 offsets 10..15).
a=$(api POST "/v1/content/$doc/annotations" "$tok" '{"body":"about brown","startOffset":10,"endOffset":15}')
expect "create status" "$(status)" 201
ann=$(js "$a" r.id)
expect "anchor kind" "$(js "$a" r.positionData.anchor.kind)" yjs-relative-position
expect "anchor root" "$(js "$a" r.positionData.anchor.root)" content
expect "chunk of the anchor" "$(js "$a" "typeof r.chunkId==='string'")" true
sb=$(js "$a" r.positionData.anchor.startBytes)
eb=$(js "$a" r.positionData.anchor.endBytes)

# 2. Replies and resolve/unresolve.
rep=$(api POST "/v1/content/$doc/annotations" "$tok" "{\"body\":\"a reply\",\"parentId\":\"$ann\"}")
expect "reply status" "$(status)" 201
expect "reply parent" "$(js "$rep" r.parentId)" "$ann"
res=$(api PATCH "/v1/annotations/$ann" "$tok" '{"resolved":true}')
expect "resolve" "$(js "$res" r.resolved)" true
expect "resolvedAt set" "$(js "$res" "typeof r.resolvedAt==='string'")" true
expect "resolvedBy = caller" "$(js "$res" "r.resolvedBy===r.authorId")" true
res=$(api PATCH "/v1/annotations/$ann" "$tok" '{"resolved":false}')
expect "unresolve" "$(js "$res" "r.resolved===false&&r.resolvedAt===null&&r.resolvedBy===null")" true
expect "offsets untouched by unrelated PATCH" "$(js "$res" "[r.startOffset,r.endOffset]")" "[10,15]"

# 3. Out of range.
api POST "/v1/content/$doc/annotations" "$tok" '{"body":"x","startOffset":5,"endOffset":100000}' >/dev/null
expect "out of range" "$(status)" 400

# 4. A real Yjs client types before the anchor (and after it).
r=$(client --insert-at 4 --insert "very, very " --resolve "$sb,$eb")
now=$(js "$r" r.text)
expect "client sees the anchor move" "$(js "$r" "JSON.stringify(r.resolved)")" "[21,26]"
wait_offsets() {  # ID EXPECTED_JSON: polls until the stored offsets are EXPECTED (materialisation is debounced)
  for _ in $(seq 1 60); do
    got=$(js "$(api GET "/v1/annotations/$1" "$tok")" "[r.startOffset,r.endOffset]")
    [ "$got" = "$2" ] && { echo "$got"; return 0; }
    sleep 0.5
  done
  echo "$got"
}
expect "stored offsets follow the edit" "$(wait_offsets "$ann" "[21,26]")" "[21,26]"
g=$(api GET "/v1/annotations/$ann" "$tok")
expect "text at the offsets" "$(node -e "const [t,s,e]=process.argv.slice(1);console.log(t.slice(+s,+e))" "$now" "$(js "$g" r.startOffset)" "$(js "$g" r.endOffset)")" brown
chunk=$(js "$g" r.chunkId)
ck=$(api GET "/v1/content/$doc/chunks" "$tok")
expect "chunk holds the annotated text" "$(js "$ck" "r.items.some(c=>c.id==='$chunk'&&c.content.includes('brown'))")" true

# 5. Move the range with PATCH (to "lazy"), then delete text before it.
s=$(index_of "$now" lazy)
m=$(api PATCH "/v1/annotations/$ann" "$tok" "{\"startOffset\":$s,\"endOffset\":$((s + 4))}")
expect "patch status" "$(status)" 200
expect "patched anchor differs" "$(js "$m" "r.positionData.anchor.startBytes!=='$sb'")" true
sb2=$(js "$m" r.positionData.anchor.startBytes)
eb2=$(js "$m" r.positionData.anchor.endBytes)
q=$(index_of "$now" quick)
r=$(client --delete-at "$q" --delete-len 6 --resolve "$sb2,$eb2,$sb,$eb")
now=$(js "$r" r.text)
want="[$((s - 6)),$((s - 2))]"
expect "client resolves the moved anchor" "$(js "$r" "JSON.stringify(r.resolved.slice(0,2))")" "$want"
expect "stored offsets follow the delete" "$(wait_offsets "$ann" "$want")" "$want"
expect "text at the moved offsets" "$(node -e "const [t,s,e]=process.argv.slice(1);console.log(t.slice(+s,+e))" "$now" $((s - 6)) $((s - 2)))" lazy

# 6. Deleting the annotated text collapses the range where it was.
l=$(index_of "$now" lazy)
r=$(client --delete-at "$l" --delete-len 4)
expect "collapsed range" "$(wait_offsets "$ann" "[$l,$l]")" "[$l,$l]"

# 7. The generic list still shows the annotation and its reply.
lst=$(api GET "/v1/content/$doc/annotations" "$tok")
expect "list has the annotation and its reply" "$(js "$lst" r.items.length)" 2

# 8. Offsets of a live document are those of the live text, before any
#    materialisation (decision record 1400): a fresh annotation on "dog", then a
#    client types at the start; at once the GET, the list and a conditional GET
#    (If-None-Match with the ETag of the stale row) report the moved range.
#    Checked only while the edit is not materialised yet (else a later attempt).
now=$(js "$r" r.text)  # after step 6
d=$(index_of "$now" dog)
a2=$(api POST "/v1/content/$doc/annotations" "$tok" "{\"body\":\"the dog\",\"startOffset\":$d,\"endOffset\":$((d + 3))}")
expect "create on dog" "$(status)" 201
ann2=$(js "$a2" r.id)
etag=$(curl -s -D - -o /dev/null "http://127.0.0.1:$port/v1/annotations/$ann2" -H "Authorization: Bearer $tok" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
checked=no
for attempt in 1 2 3; do
  marker="Live edit $attempt. "
  r=$(client --insert-at 0 --insert "$marker" --resolve "$(js "$a2" r.positionData.anchor.startBytes),$(js "$a2" r.positionData.anchor.endBytes)")
  live=$(js "$r" r.text)
  want=$(js "$r" "JSON.stringify(r.resolved)")
  g=$(api GET "/v1/annotations/$ann2" "$tok")
  l=$(api GET "/v1/content/$doc/annotations" "$tok")
  c=$(curl -s -w '\n%{http_code}' "http://127.0.0.1:$port/v1/annotations/$ann2" -H "Authorization: Bearer $tok" -H "If-None-Match: $etag")
  ck=$(api GET "/v1/content/$doc/chunks" "$tok")
  if [ "$(js "$ck" "r.items.some(c=>c.content.includes('$marker'))")" = true ]; then
    echo "attempt $attempt: already materialised, again"; continue
  fi
  expect "live GET offsets" "$(js "$g" "[r.startOffset,r.endOffset]")" "$want"
  expect "live list offsets" "$(js "$l" "JSON.stringify((x=>[x.startOffset,x.endOffset])(r.items.find(i=>i.id==='$ann2')))")" "$want"
  expect "conditional GET is not 304" "$(echo "$c" | tail -1)" 200
  expect "conditional GET offsets" "$(js "$(echo "$c" | head -n -1)" "[r.startOffset,r.endOffset]")" "$want"
  expect "text at the live offsets" "$(node -e "const [s,e]=JSON.parse(process.argv[2]);console.log(process.argv[1].slice(s,e))" "$live" "$want")" dog
  gc=$(js "$g" r.chunkId)
  expect "live chunk holds the annotated text" "$(js "$ck" "r.items.some(c=>c.id==='$gc'&&c.content.includes('dog'))")" true
  # A PATCH naming one side keeps the other where the anchor is now.
  end=$(js "$r" "r.resolved[1]")
  p=$(api PATCH "/v1/annotations/$ann2" "$tok" "{\"endOffset\":$end}")
  expect "PATCH of one side keeps the live other side" "$(js "$p" "[r.startOffset,r.endOffset]")" "$want"
  checked=yes; break
done
expect "a live check ran before materialisation" "$checked" yes

# 9. Idempotency-Key: a create retried with the same key and body after the
#    text changed replays the first response (it was 422: the fingerprint was
#    taken over the anchored body).
idem() {  # KEY BODY: prints status, then the body
  curl -s -D "$work/idem.h" -o "$work/idem.json" -w '%{http_code}' -X POST "http://127.0.0.1:$port/v1/content/$doc/annotations" \
    -H "Content-Type: application/json" -H "Authorization: Bearer $tok" -H "Idempotency-Key: $1" -d "$2"
}
k1=$(idem key-1 '{"body":"idempotent","startOffset":3,"endOffset":9}')
expect "idempotent create" "$k1" 201
first=$(cat "$work/idem.json")
client --insert-at 0 --insert "Text typed before the retry. " >/dev/null
k2=$(idem key-1 '{"body":"idempotent","startOffset":3,"endOffset":9}')
expect "retry after the text changed replays" "$k2" 201
expect "replayed header" "$(grep -ci '^idempotent-replayed: true' "$work/idem.h")" 1
expect "replayed the same annotation" "$(js "$(cat "$work/idem.json")" r.id)" "$(js "$first" r.id)"
expect "one annotation for the key" "$(js "$(api GET "/v1/content/$doc/annotations?limit=100" "$tok")" "r.items.filter(i=>i.body==='idempotent').length")" 1
k3=$(idem key-1 '{"body":"another body","startOffset":3,"endOffset":9}')
expect "same key, different body" "$k3" 422
k4=$(idem key-2 '{"body":"bad","startOffset":3,"endOffset":100000}')
expect "idempotent out of range" "$k4" 400
expect "its retry replays the 400" "$(idem key-2 '{"body":"bad","startOffset":3,"endOffset":100000}')" 400
expect "replayed 400 header" "$(grep -ci '^idempotent-replayed: true' "$work/idem.h")" 1

# 10. HTML: the Y.Text holds the HTML source, offsets index it, and chunks
#     index the page text (tags stripped): the chunk is the one holding the
#     annotated words, at creation, live and after materialisation.
# Two sections of several chunks each; every sentence in a <span> with a long
# class, so that HTML offsets run far ahead of page-text offsets.
html=$(node -e "
const fill = (topic) => Array.from({length: 70}, (_, i) => '<span class=\'sentence-with-a-long-class-name\'>Filler words about the ' + topic + ' topic, number ' + i + '.</span> ').join('')
console.log('<h1 class=\'title\' id=\'top\'>Introduction</h1><p class=\'lead\'>' + fill('first') + 'Alpha beta gamma ends the first section.</p>' +
  '<h2 id=\'second-heading\'>Second</h2><p>Delta epsilon zeta opens the second section. ' + fill('second') + '</p>')")
hbody=$(node -e "console.log(JSON.stringify({projectId:process.argv[1],title:'h',contentType:'text/html',body:process.argv[2]}))" "$project" "$html")
hdoc=$(js "$(api POST "/v1/projects/$project/content" "$tok" "$hbody")" r.id)
hck=$(api GET "/v1/content/$hdoc/chunks" "$tok")
expect "the HTML item has several chunks" "$(js "$hck" "r.items.length>=4")" true
chunk_of() { js "$hck" "r.items.find(c=>c.content.includes('$1')).id"; }
hg=$(index_of "$html" gamma)
h1=$(api POST "/v1/content/$hdoc/annotations" "$tok" "{\"body\":\"on gamma\",\"startOffset\":$hg,\"endOffset\":$((hg + 5))}")
expect "HTML annotation" "$(status)" 201
expect "chunk of a word in the first section" "$(js "$h1" r.chunkId)" "$(chunk_of gamma)"
he=$(index_of "$html" epsilon)
h2=$(api POST "/v1/content/$hdoc/annotations" "$tok" "{\"body\":\"on epsilon\",\"startOffset\":$he,\"endOffset\":$((he + 7))}")
expect "chunk of a word in the second section" "$(js "$h2" r.chunkId)" "$(chunk_of epsilon)"
hs=$(index_of "$html" "<h2")
h3=$(api POST "/v1/content/$hdoc/annotations" "$tok" "{\"body\":\"on the heading\",\"startOffset\":$hs,\"endOffset\":$((hs + 10))}")
expect "a range starting in markup: the chunk of the text after it" "$(js "$h3" r.chunkId)" "$(chunk_of Second)"
hclient() { (cd "$peers" && node annotation_client.mjs --url "$url" --room "$hdoc" --token "$tok" --root content "$@"); }
hclient --insert-at "$(index_of "$html" Alpha)" --insert "<b class='x'>Bold</b> words. " >/dev/null
id1=$(js "$h1" r.id)
expect "live chunk of the first section" "$(js "$(api GET "/v1/annotations/$id1" "$tok")" r.chunkId)" "$(chunk_of gamma)"
for _ in $(seq 1 60); do
  hck=$(api GET "/v1/content/$hdoc/chunks" "$tok")
  [ "$(js "$hck" "r.items.some(c=>c.content.includes('Bold words.'))")" = true ] && break
  sleep 0.5
done
expect "materialised" "$(js "$hck" "r.items.some(c=>c.content.includes('Bold words.'))")" true
for _ in $(seq 1 20); do  # the re-anchoring follows the materialisation
  hcur=$(api GET "/v1/content/$hdoc/annotations?limit=100" "$tok")
  [ "$(js "$hcur" "r.items.find(i=>i.id==='$id1').chunkId")" = "$(chunk_of gamma)" ] && break
  sleep 0.25
done
expect "after materialisation: first section" "$(js "$hcur" "r.items.find(i=>i.id==='$id1').chunkId")" "$(chunk_of gamma)"
expect "after materialisation: second section" "$(js "$hcur" "r.items.find(i=>i.id==='$(js "$h2" r.id)').chunkId")" "$(chunk_of epsilon)"
echo PASS
