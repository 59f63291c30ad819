#!/usr/bin/env bash
# REST API benchmark: wrk against GET /v1/threads/{id} and POST
# /v1/threads/{id}/messages of `cnx serve` (embedded PostgreSQL), and
# `pgbench -S` against the same cluster in the same run as the ceiling.
# Prints req/s, p50/p99 and the ratio API GET req/s ÷ pgbench select TPS.
# Usage: bench/http/api.sh [BUILD_DIR]
#   (env: DURATION=10s CONNECTIONS=32 WRK_THREADS=2 PG_CLIENTS=16 POOL=16)
set -euo pipefail
build=${1:-build/release}
duration=${DURATION:-10s}
conns=${CONNECTIONS:-32}
wrk_threads=${WRK_THREADS:-2}
pg_clients=${PG_CLIENTS:-16}
pool=${POOL:-16}
cnx=$build/src/cli/cnx
command -v wrk >/dev/null || { echo "wrk not installed"; exit 1; }
command -v pgbench >/dev/null || { echo "pgbench not installed"; exit 1; }
[ -x "$cnx" ] || { echo "build the cnx target first"; exit 1; }

work=$(mktemp -d /tmp/cnx-api-bench.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$cnx" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --rate-limit 0 --pg-pool-size "$pool" \
  >"$work/serve.log" 2>&1 &
pid=$!
api=http://127.0.0.1:$port
for _ in $(seq 300); do curl -sf "$api/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$api/readyz" >/dev/null || { echo "cnx serve did not become ready"; cat "$work/serve.log"; exit 1; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$api$1" -H 'Content-Type: application/json' ${token:+-H "Authorization: Bearer $token"} -d "$2"; }
token=
token=$(post /v1/signup '{"tenantName":"Bench","email":"bench@example.com","password":"bench password"}' | json '["token"]')
program=$(post /v1/programs '{"name":"Bench"}' | json '["id"]')
project=$(post /v1/projects "{\"programId\":\"$program\",\"name\":\"Bench\"}" | json '["id"]')
thread=$(post /v1/projects/$project/threads '{"title":"Bench"}' | json '["id"]')
post /v1/threads/$thread/messages '{"role":"user","content":"warm up"}' >/dev/null

cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"role":"user","content":"How many tokens does a short benchmark message take?"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
LUA

# measure NAME URL [ARGS]: prints and sets $rps
measure() {
  local name=$1 url=$2; shift 2
  wrk -t"$wrk_threads" -c"$conns" -d2s "$@" "$url" >/dev/null  # warm-up
  local out; out=$(wrk -t"$wrk_threads" -c"$conns" -d"$duration" --latency "$@" "$url")
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  local p50 p99 errs
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
  printf '%-34s %10s req/s   p50 %-8s p99 %-8s %s\n' "$name" "$rps" "$p50" "$p99" "$errs"
}

echo "wrk -t$wrk_threads -c$conns -d$duration; cnx serve pool $pool, 2 io threads; pgbench -S -c$pg_clients -j2 -T${duration%s}; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
measure "API GET /v1/threads/{id}" "$api/v1/threads/$thread" -H "Authorization: Bearer $token"
get_rps=$rps
measure "API POST /v1/threads/{id}/messages" "$api/v1/threads/$thread/messages" -s "$work/post.lua"
post_rps=$rps

pgurl=$("$cnx" pg url --socket --data-dir "$work/data" --db postgres)
psql "$pgurl" -qc "DROP DATABASE IF EXISTS pgbench" -c "CREATE DATABASE pgbench" >/dev/null
bench_url=$("$cnx" pg url --socket --data-dir "$work/data" --db pgbench)
pgbench -qi -s 10 "$bench_url" >/dev/null 2>&1
pg_out=$(pgbench -S -c"$pg_clients" -j2 -T"${duration%s}" "$bench_url" 2>/dev/null)
tps=$(awk '/^tps = /{print $3}' <<<"$pg_out")
printf '%-34s %10s TPS\n' "pgbench -S (same cluster)" "$tps"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v g="$get_rps" -v p="$post_rps" -v t="$tps" 'BEGIN {
  printf "ratio API GET req/s / pgbench -S TPS: %.2f (aim >= 0.5); API POST message / pgbench -S: %.2f\n", g / t, p / t }'
