#!/usr/bin/env bash
# CPU time per REST GET (cnx serve + its PostgreSQL + wrk) beside the CPU time per
# `pgbench -S` transaction (PostgreSQL + pgbench) on the same cluster, from /proc and
# time(1): a figure that depends less on the machine's other load than req/s does.
# Usage: bench/http/cpu_per_request.sh [BUILD_DIR]   (cnx serve's CNX_* environment
# applies, e.g. CNX_HTTP_IO_THREAD_DB_CONNECTIONS=0 for an A/B of decision 0005)
set -euo pipefail
build=${1:-build/release}
cnx=$build/src/cli/cnx
[ -x "$cnx" ] || { echo "build the cnx target first"; exit 1; }
work=$(mktemp -d /tmp/cnx-cpu.XXXXXX); chmod 755 $work
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$cnx serve --data-dir $work/data --listen 127.0.0.1:$port --rate-limit 0 --pg-pool-size 16 >$work/serve.log 2>&1 &
pid=$!
trap 'kill $pid; wait $pid; rm -rf $work' EXIT
api=http://127.0.0.1:$port
for _ in $(seq 300); do curl -sf $api/readyz >/dev/null 2>&1 && break; sleep 0.1; done
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$api$1" -H 'Content-Type: application/json' ${token:+-H "Authorization: Bearer $token"} -d "$2"; }
token=
token=$(post /v1/signup '{"tenantName":"Bench","email":"bench@example.com","password":"bench password"}' | json '["token"]')
program=$(post /v1/programs '{"name":"Bench"}' | json '["id"]')
project=$(post /v1/projects "{\"programId\":\"$program\",\"name\":\"Bench\"}" | json '["id"]')
thread=$(post /v1/projects/$project/threads '{"title":"Bench"}' | json '["id"]')
# CPU ticks of all postgres processes + cnx
pm=$(pgrep -f "postgres -D $work" | head -1)
ticks() { local t=0; local procs="$pm $(pgrep -P $pm)"; [ "$1" = pg ] || procs="$procs $pid"; for p in $procs; do
  [ -r /proc/$p/stat ] && t=$((t + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0))); done; echo $t; }
wrk -t2 -c32 -d2s "$api/v1/threads/$thread" -H "Authorization: Bearer $token" >/dev/null
# wrk's own CPU: measure via /usr/bin/time
t0=$(ticks none); p0=$(ticks pg)
out=$( { /usr/bin/time -f "%U %S" wrk -t2 -c32 -d6s "$api/v1/threads/$thread" -H "Authorization: Bearer $token"; } 2>&1 )
t1=$(ticks none); p1=$(ticks pg)
reqs=$(awk '/requests in/{print $1}' <<<"$out")
wrkcpu=$(tail -1 <<<"$out" | awk '{print $1+$2}')
api_us=$(python3 -c "print(round((($t1-$t0)/100 + $wrkcpu)/$reqs*1e6,1))")
server_us=$(python3 -c "print(round((($t1-$t0)/100)/$reqs*1e6,1))")
pgonly_us=$(python3 -c "print(round((($p1-$p0)/100)/$reqs*1e6,1))")
echo "GET: $reqs requests, server (cnx+pg) $server_us us/req (pg $pgonly_us), with wrk $api_us us/req, $(awk '/Requests\/sec/{print $2}' <<<"$out") req/s"
psql "$($cnx pg url --data-dir $work/data --db postgres)" -qc "CREATE DATABASE pgbench" >/dev/null
sock=$($cnx pg url --socket --data-dir $work/data --db pgbench)
pgbench -qi -s 10 "$sock" >/dev/null 2>&1
t0=$(ticks none)
out=$( { /usr/bin/time -f "%U %S" pgbench -S -c16 -j2 -T6 "$sock"; } 2>&1 )
t1=$(ticks none)
txs=$(awk '/number of transactions actually processed/{print $NF}' <<<"$out")
pbcpu=$(tail -1 <<<"$out" | awk '{print $1+$2}')
pg_us=$(python3 -c "print(round((($t1-$t0)/100 + $pbcpu)/$txs*1e6,1))")
echo "pgbench -S: $txs tx, pg+pgbench $pg_us us/tx, $(awk '/^tps = /{print $3}' <<<"$out") tps"
python3 -c "print('CPU-based ratio (pgbench us/tx / GET us/req incl. wrk):', round($pg_us/$api_us, 3))"
echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
