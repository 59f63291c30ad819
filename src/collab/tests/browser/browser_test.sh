#!/usr/bin/env bash
# Stock Yjs editors in a real browser against `cnx serve`:
#   browser_test.sh BUILD_DIR
# CodeMirror 6 (y-codemirror.next) and ProseMirror (y-prosemirror) pages in
# Debian's Chromium, driven by puppeteer-core (browser_peer.mjs): users A and
# B (editors) and V (viewer) type into the same content items; then the
# server is killed (-9) with every page closed and restarted, and fresh pages
# must show the same documents; then it stops under open pages, which edit
# offline and merge when it is back (on the same port). The npm
# packages are installed into BUILD_DIR/peers/collab-browser and the page is
# bundled there (esbuild); nothing is written into the source tree.
# Fails (never skips) without /usr/bin/chromium (CNX_CHROMIUM overrides it).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")/../../../.." && pwd)
chromium=${CNX_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "FAILED: $chromium is missing: run scripts/bootstrap.sh (it installs Debian's chromium)"; exit 1; }
peers=$build/peers/collab-browser
"$src/scripts/peer-setup.sh" "$src/src/collab/tests/browser" "$peers" >/dev/null
# Bundled beside and renamed into place: a parallel run may be serving it.
tmp=$(mktemp "$peers/.page.bundle.XXXXXX")
"$peers/node_modules/.bin/esbuild" "$peers/page.js" --bundle --format=iife --log-level=warning --outfile="$tmp"
chmod 644 "$tmp" && mv -f "$tmp" "$peers/page.bundle.js"

work=$(mktemp -d /tmp/cnx-browser-XXXXXX)
# shellcheck source=../serve_lib.sh
. "$src/src/collab/tests/serve_lib.sh"
trap cleanup EXIT
start_serve

tok=$(api POST /v1/signup "" '{"tenantName":"t","email":"a@example.com","password":"correct horse battery","displayName":"Alice"}')
aid=$(js "$tok" r.user.id)
tok=$(js "$tok" r.token)
program=$(js "$(api POST /v1/programs "$tok" '{"name":"p"}')" r.id)
project=$(js "$(api POST "/v1/programs/$program/projects" "$tok" "{\"programId\":\"$program\",\"name\":\"x\"}")" r.id)
item() { js "$(api POST "/v1/projects/$project/content" "$tok" "{\"projectId\":\"$project\",\"title\":\"$1\",\"contentType\":\"text/plain\"}")" r.id; }
cm=$(item notes)
pm=$(item outline)
member() {  # EMAIL ROLE -> "USER_ID TOKEN"
  local uid
  uid=$(js "$(api POST /v1/users "$tok" "{\"email\":\"$1\",\"password\":\"member password\",\"role\":\"member\"}")" r.id)
  js "$(api POST "/v1/projects/$project/members" "$tok" "{\"projectId\":\"$project\",\"userId\":\"$uid\",\"role\":\"$2\"}")" r.id >/dev/null
  echo "$uid $(js "$(api POST /v1/sessions "" "{\"email\":\"$1\",\"password\":\"member password\"}")" r.token)"
}
m=$(member b@example.com editor)
bid=${m% *} btok=${m#* }
m=$(member v@example.com viewer)
vtok=${m#* }

# The driver prints RESTART when every page is closed: the server is killed
# (-9, so the documents come back from operations_log, not from a snapshot
# written at shutdown; the embedded PostgreSQL survives and is adopted) and
# started again; STOP with pages open: a graceful stop (SIGTERM); START: it
# starts again on the same port, where the open pages reconnect. Each is
# answered with `done`.
coproc PEER { cd "$peers" && exec node browser_peer.mjs --api "http://127.0.0.1:$port" --cm "$cm" --pm "$pm" \
  --profile "$work/chromium" --a "$tok" --b "$btok" --v "$vtok" --a-id "$aid" --b-id "$bid"; }
peer_pid=$PEER_PID
to_peer=${PEER[1]}
# On a failure here the driver (and its Chromium) must not outlive the script.
trap 'rc=$?; set +e; kill "$peer_pid" 2>/dev/null; (exit $rc); cleanup' EXIT
stop() { kill "-$1" "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }
while IFS= read -r line; do
  echo "$line"
  case $line in
    RESTART) stop KILL; start_serve "$port"; echo done >&"$to_peer" ;;
    STOP) stop TERM; echo done >&"$to_peer" ;;
    START) start_serve "$port"; echo done >&"$to_peer" ;;
  esac
done <&"${PEER[0]}"
wait "$peer_pid"
echo PASS
