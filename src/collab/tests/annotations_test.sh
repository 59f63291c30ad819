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
cp "$src/src/collab/tests/annotation_client.mjs" "$peers/"
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
echo PASS
