# Sourced by the collab end-to-end scripts. Needs $build and $work; `start_serve [PORT]`
# starts `cnx serve` on PORT (default: a free port) with its data in $work (environment
# variables set by the caller apply) and sets $pid and $port; `cleanup` is the
# EXIT trap. Then: api METHOD PATH TOKEN BODY (prints the body; `status` prints
# the HTTP status), js JSON EXPR, expect DESCRIPTION ACTUAL EXPECTED.
pid=""
cleanup() { rc=$?; [ $rc -ne 0 ] && tail -20 "$work/serve.log"; [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }

start_serve() {
  : >"$work/serve.log"  # never the previous run's "is up" line
  "$build/src/cli/cnx" serve --data-dir "$work/data" --listen "127.0.0.1:${1:-0}" --rate-limit 0 \
    --pwhash-opslimit 1 --pwhash-memlimit-kib 8 >"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if grep -q "is up: http://" "$work/serve.log"; then
      port=$(grep -o "is up: http://127.0.0.1:[0-9]*" "$work/serve.log" | head -1 | sed 's/.*://')
      break
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "server exited"; exit 1; }
    sleep 0.1
  done
  [ -n "${port:-}" ] || { echo "server did not come up"; exit 1; }
}

api() {  # METHOD PATH TOKEN BODY -> body; status in $work/status
  curl -s -o "$work/out" -w '%{http_code}' -X "$1" "http://127.0.0.1:$port$2" -H "Content-Type: application/json" \
    -H "If-Match: *" ${3:+-H "Authorization: Bearer $3"} ${4:+-d "$4"} >"$work/status"
  cat "$work/out"
}
status() { cat "$work/status"; }
js() {  # JSON EXPR: prints EXPR evaluated with `r` = the parsed JSON
  node -e "const r=JSON.parse(process.argv[1]);const v=($2);if(v===undefined){console.error('undefined: '+process.argv[1]);process.exit(1)};console.log(typeof v==='object'?JSON.stringify(v):v)" "$1"
}
expect() {  # DESCRIPTION ACTUAL EXPECTED
  if [ "$2" != "$3" ]; then echo "FAILED: $1: got '$2', expected '$3'"; exit 1; fi
  echo "ok: $1"
}
