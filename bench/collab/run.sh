#!/usr/bin/env bash
# bench/collab/run.sh BUILD_DIR: the collaboration server (`cnx serve`,
# /v1/collab) against the reference y-websocket server (node,
# shared/tools/yjs/reference-server.mjs --impl upstream) with the same client
# workload in the same run:
#   1. one room, 50 real y-websocket clients (bench/collab/driver.mjs):
#      broadcast latency p50/p99 at a fixed offered rate (after WARMUP seconds
#      at that rate that are not recorded), then a burst
#      (updates/s until every client has every update), then a burst of
#      LIGHT_BURST updates per connection from 50 protocol-level clients that
#      do not integrate what they receive (the server's throughput without
#      the Yjs clients' work; driver.mjs "Phase 3"), and the server CPU
#      time per update (cnx + its PostgreSQL, resp. the node process);
#   2. memory per idle loaded document: RSS delta of the server process after
#      DOCS documents were each edited by a client that then left;
#   3. load time of a document with OPS operations: ours from operations_log
#      (rows written with COPY) and, after a restart, from its snapshot; the
#      reference from its y-leveldb persistence (getYDoc, the same updates).
# The clients edit the Y.Text "content". Unless MATERIALIZE=1, cnx serve runs
# with another text root (collab.text_root), so the comparison is of the
# collaboration servers alone: no content versions, chunking or embedding of
# the edited text, which the reference server does not do either.
# env: CLIENTS=50 PROCS=2 RATE=100 SECONDS_PER_PHASE=5 WARMUP=1 BURST=20 LIGHT_BURST=100 DOCS=200 DOC_OPS=200 OPS=100000 MATERIALIZE=0
#      PHASES="room idle load" (a subset runs only those phases); SETTLE=3: seconds between the
#      idle documents' last edit and the memory reading
#      PERF_OUT=FILE: `perf record -g` of cnx and its PostgreSQL processes while cnx's room phase runs
#      PG_SETTINGS="name=value ...": reload-level settings for cnx's cluster (ALTER SYSTEM), for experiments
#      PG_LOG_OUT=FILE, SERVE_LOG_OUT=FILE: copies of the cluster's and cnx's logs at the end
#      (PERF_ARGS replaces "-F 499 -g", e.g. "-F 199 --call-graph dwarf"; PERF_CNX_ONLY=1 leaves PostgreSQL out)
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
shared=${CNX_SHARED_DIR:-$root/../shared}
cnx=$build/src/cli/cnx
clients=${CLIENTS:-50} procs=${PROCS:-2} rate=${RATE:-100} seconds=${SECONDS_PER_PHASE:-5} warmup=${WARMUP:-1} burst=${BURST:-20} light_burst=${LIGHT_BURST:-100}
docs=${DOCS:-200} doc_ops=${DOC_OPS:-200} ops=${OPS:-100000}
phases=" ${PHASES:-room idle load} "
[ -x "$cnx" ] || { echo "build the cnx target first"; exit 1; }
peer=$build/peers/yjs
"$root/scripts/peer-setup.sh" yjs "$peer" >/dev/null
cp "$here/driver.mjs" "$here/tools.mjs" "$peer/"

work=$(mktemp -d /tmp/cnx-collab-bench.XXXXXX)
chmod 755 "$work"
pid= ref=
cleanup() {
  for p in $pid $ref; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [ -n "${PG_LOG_OUT:-}" ]; then cp "$work/data/pg/server.log" "$PG_LOG_OUT" 2>/dev/null || true; fi
  if [ -n "${SERVE_LOG_OUT:-}" ]; then cp "$work/serve.log" "$SERVE_LOG_OUT" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# CPU seconds of a process plus (for cnx) its PostgreSQL cluster's processes, and of the process alone.
cpu_s() {
  python3 - "$1" "${2:-}" <<'PY'
import os, sys
hz = os.sysconf('SC_CLK_TCK')
def stat(p):
    s = open('/proc/%d/stat' % p).read(); f = s[s.rindex(')') + 2:].split()
    return int(f[1]), [int(x) for x in f[11:15]]
own = sum(stat(int(sys.argv[1]))[1][:2])
pg = 0
if sys.argv[2]:
    pm = int(open(sys.argv[2]).read().split()[0])
    pg += sum(stat(pm)[1])
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                ppid, t = stat(int(p))
                if ppid == pm: pg += sum(t[:2])
            except Exception: pass
print((own + pg) / hz, own / hz)
PY
}

start_cnx() {
  local text_root=bench-not-materialised
  [ "${MATERIALIZE:-0}" = 1 ] && text_root=content
  CNX_COLLAB_IDLE_EVICTION=${IDLE:-1h} CNX_COLLAB_TEXT_ROOT=$text_root "$cnx" serve --data-dir "$work/data" --listen 127.0.0.1:${port:-0} \
    --rate-limit 0 --pwhash-opslimit 1 --pwhash-memlimit-kib 8 >>"$work/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    if [ -n "${port:-}" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    if [ -z "${port:-}" ] && grep -q "is up: http://" "$work/serve.log"; then
      port=$(grep -o "is up: http://127.0.0.1:[0-9]*" "$work/serve.log" | head -1 | sed 's/.*://')
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "cnx serve exited"; exit 1; }
    sleep 0.1
  done
  echo "cnx serve did not come up"; exit 1
}
start_ref() {
  (cd "$peer" && exec env ${YPERSISTENCE:+YPERSISTENCE=$YPERSISTENCE} node reference-server.mjs --port 0 --quiet) >"$work/ref.log" 2>&1 &
  ref=$!
  for _ in $(seq 1 100); do grep -q listening "$work/ref.log" && break; sleep 0.1; done
  ref_port=$(grep -o 'ws://[0-9.]*:[0-9]*' "$work/ref.log" | sed 's/.*://')
}
api() {  # METHOD PATH BODY
  curl -sf -X "$1" "http://127.0.0.1:$port$2" -H "Content-Type: application/json" \
    ${tok:+-H "Authorization: Bearer $tok"} ${3:+-d "$3"}
}
field() { node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s)$1))"; }

start_cnx
start_ref
tok=
signup=$(api POST /v1/signup '{"tenantName":"Bench","email":"bench@example.com","password":"bench password","displayName":"B"}')
tok=$(echo "$signup" | field .token)
tenant=$(echo "$signup" | field .tenant.id)
program=$(api POST /v1/programs '{"name":"Bench"}' | field .id)
project=$(api POST "/v1/programs/$program/projects" "{\"programId\":\"$program\",\"name\":\"Bench\"}" | field .id)
newdoc() { api POST "/v1/projects/$project/content" "{\"projectId\":\"$project\",\"title\":\"$1\",\"contentType\":\"text/plain\"}" | field .id; }
ours_url="ws://127.0.0.1:$port/v1/collab"
ref_url="ws://127.0.0.1:$ref_port"
pmfile=$work/data/pg/postmaster.pid
if [ -n "${PG_SETTINGS:-}" ]; then
  for kv in $PG_SETTINGS; do
    psql "$("$cnx" pg url --data-dir "$work/data")" -qAtc "ALTER SYSTEM SET ${kv%%=*} = '${kv#*=}'" >/dev/null
  done
  psql "$("$cnx" pg url --data-dir "$work/data")" -qAtc "SELECT pg_reload_conf()" >/dev/null
fi
echo "{\"machine\":\"$(nproc) cores\",\"node\":\"$(node --version)\",\"load\":\"$(load)\"}"

# --- 1. one room, $clients clients -------------------------------------------
room=$(newdoc bench-room)
drive() {  # NAME URL ROOM TOKEN PID [PMFILE]
  local c0 c1 o0 o1 out
  local perf=
  if [ -n "${PERF_OUT:-}" ] && [ -n "${6:-}" ]; then
    local pm pids
    pm=$(head -1 "$6")
    pids=$(echo "$5" "$pm" $(pgrep -P "$pm") | tr ' ' ',')
    [ -n "${PERF_CNX_ONLY:-}" ] && pids=$5
    perf record -q ${PERF_ARGS:--F 499 -g} -p "$pids" -o "$PERF_OUT" >/dev/null 2>&1 &
    perf=$!
    sleep 0.5
  fi
  read -r c0 o0 < <(cpu_s "$5" "${6:-}")
  out=$(cd "$peer" && node driver.mjs --url "$2" --room "$3" ${4:+--token "$4"} --clients "$clients" --procs "$procs" \
    --rate "$rate" --seconds "$seconds" --warmup "$warmup" --burst "$burst" --light-burst "$light_burst" 2>"$work/driver-$1.err") || { cat "$work/driver-$1.err"; echo "$out"; exit 1; }
  read -r c1 o1 < <(cpu_s "$5" "${6:-}")
  if [ -n "$perf" ]; then kill -INT "$perf"; wait "$perf" 2>/dev/null || true; fi
  node -e '
    const r = JSON.parse(process.argv[1]); const cpu = +process.argv[2], own = +process.argv[5]
    const updates = r.fixedRate.warmupSent + r.fixedRate.sent + r.burst.updates + (r.lightBurst ? r.lightBurst.updates : 0)
    r.server = process.argv[3]; r.serverCpuS = +cpu.toFixed(2); r.serverCpuUsPerUpdate = +(1e6 * cpu / updates).toFixed(1)
    r.processCpuUsPerUpdate = +(1e6 * own / updates).toFixed(1)  // without PostgreSQL
    r.load = process.argv[4]
    console.log(JSON.stringify(r))' "$out" "$(echo "$c1 - $c0" | bc -l)" "$1" "$(load)" "$(echo "$o1 - $o0" | bc -l)"
}
if [[ $phases == *" room "* ]]; then
ref_res=$(drive reference "$ref_url" bench-room "" "$ref")
echo "$ref_res"
ours_res=$(drive cnx "$ours_url" "$room" "$tok" "$pid" "$pmfile")
echo "$ours_res"
[ "${CNX_COLLAB_TRACE:-}" = 1 ] && sleep 2  # the trace of the burst is logged after a quiet second
node -e '
  const a = JSON.parse(process.argv[1]), b = JSON.parse(process.argv[2])
  console.log(JSON.stringify({ figure: "room", throughputRatio_cnx_over_ref: +(b.burst.updatesPerSec / a.burst.updatesPerSec).toFixed(2),
    ...(a.lightBurst && b.lightBurst ? { lightThroughputRatio_cnx_over_ref: +(b.lightBurst.updatesPerSec / a.lightBurst.updatesPerSec).toFixed(2) } : {}),
    p99Ratio_ref_over_cnx_fixedRate: +(a.fixedRate.p99Ms / b.fixedRate.p99Ms).toFixed(2),
    p99Ratio_ref_over_cnx_burst: +(a.burst.p99Ms / b.burst.p99Ms).toFixed(2),
    cpuPerUpdateRatio_ref_over_cnx: +(a.serverCpuUsPerUpdate / b.serverCpuUsPerUpdate).toFixed(2) }))' "$ref_res" "$ours_res"
fi

# --- 2. memory per idle loaded document ------------------------------------------
mem() {  # NAME URL ROOMS TOKEN PID
  sleep 2
  local r0 r1
  r0=$(rss_kb "$5")
  (cd "$peer" && node tools.mjs fill --url "$2" --rooms "$3" ${4:+--token "$4"} --ops "$doc_ops" >/dev/null)
  sleep "${SETTLE:-3}"  # snapshots, presence and socket teardown settle
  r1=$(rss_kb "$5")
  echo "{\"figure\":\"idle-docs\",\"server\":\"$1\",\"docs\":$docs,\"opsPerDoc\":$doc_ops,\"rssBeforeKB\":$r0,\"rssAfterKB\":$r1,\"kbPerDoc\":$(echo "scale=1; ($r1 - $r0) / $docs" | bc),\"load\":\"$(load)\"}"
}
if [[ $phases == *" idle "* ]]; then
for i in $(seq 1 "$docs"); do newdoc "idle-$i"; done >"$work/rooms-cnx.txt"
for i in $(seq 1 "$docs"); do echo "idle-$i"; done >"$work/rooms-ref.txt"
mem reference "$ref_url" "$work/rooms-ref.txt" "" "$ref"
mem cnx "$ours_url" "$work/rooms-cnx.txt" "$tok" "$pid"
if [ -n "${MALLOC_STATS:-}" ]; then  # glibc's per-arena totals (to the server's log): in use vs held
  gdb -p "$pid" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true
  sleep 0.5
  grep -A3 "^Total (incl. mmap)" "$work/serve.log" | sed 's/^/# cnx malloc_stats: /'
fi
fi
kill "$ref"; wait "$ref" 2>/dev/null || true; ref=
[[ $phases == *" load "* ]] || exit 0

# --- 3. load a document of $ops operations ---------------------------------------
trace=$shared/testdata/yjs/traces/automerge-paper.json.gz
(cd "$peer" && node tools.mjs gen "$trace" "$ops" "$work/updates.jsonl" >/dev/null)
big=$(newdoc big)
(cd "$peer" && node tools.mjs copy "$work/updates.jsonl" "$tenant" "$big" "$work/ops.tsv")
pgurl=$("$cnx" pg url --data-dir "$work/data")
psql "$pgurl" -qc "\\copy operations_log (tenant_id, document_id, client_id, clock, update) FROM '$work/ops.tsv'"
from_log=$(cd "$peer" && node tools.mjs sync --url "$ours_url" --room "$big" --token "$tok")
server_log=$(grep "collab: loaded $big" "$work/serve.log" | tail -1 | grep -o 'in [0-9.]* ms' | grep -o '[0-9.]*')
# A restart snapshots the room (and deletes the covered operations): the next load is from the snapshot.
kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=
start_cnx
from_snap=$(cd "$peer" && node tools.mjs sync --url "$ours_url" --room "$big" --token "$tok")
server_snap=$(grep "collab: loaded $big" "$work/serve.log" | tail -1 | grep -o 'in [0-9.]* ms' | grep -o '[0-9.]*')
(cd "$peer" && node tools.mjs leveldb-store "$work/updates.jsonl" "$work/leveldb" big)
ref_log=$(cd "$peer" && node tools.mjs leveldb-load "$work/leveldb" big)  # 100,000 stored updates (and trims them)
ref_snap=$(cd "$peer" && node tools.mjs leveldb-load "$work/leveldb" big) # one merged update
echo "{\"figure\":\"load\",\"ops\":$ops,\"cnxServerFromLogMs\":$server_log,\"cnxClientSyncFromLog\":$from_log,\"cnxServerFromSnapshotMs\":$server_snap,\"cnxClientSyncFromSnapshot\":$from_snap,\"refLeveldbFromUpdates\":$ref_log,\"refLeveldbFromMerged\":$ref_snap,\"load\":\"$(load)\"}"
