#!/usr/bin/env bash
# HTTP API benchmark: wrk against /healthz of cnx::api::Server and of a minimal
# synchronous Beast server (the baseline), same machine, same run, same wrk
# settings; prints requests/s and the ratio to the baseline.
# The three servers are measured in alternation for ROUNDS rounds and the
# median of each is reported, so load from other processes hits all alike.
# Usage: bench/http/run.sh [BUILD_DIR]
#   (env: ROUNDS=3 DURATION=5s CONNECTIONS=64 WRK_THREADS=2 IO_THREADS=2)
set -euo pipefail
build=${1:-build/release}
rounds=${ROUNDS:-3}
duration=${DURATION:-5s}
conns=${CONNECTIONS:-64}
wrk_threads=${WRK_THREADS:-2}
io_threads=${IO_THREADS:-2}
ours=$build/bench/http/http_bench_server
base=$build/bench/http/http_baseline_server
command -v wrk >/dev/null || { echo "wrk not installed"; exit 1; }
[ -x "$ours" ] && [ -x "$base" ] || { echo "build the http_bench_server and http_baseline_server targets first"; exit 1; }

pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap cleanup EXIT

# start CMD...: runs a server, sets $pid and $port
start() {
  local out; out=$(mktemp)
  "$@" >"$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do grep -q '^port ' "$out" && break; sleep 0.05; done
  port=$(awk '/^port /{print $2}' "$out"); rm -f "$out"
  [ -n "$port" ] || { echo "server did not start: $*"; exit 1; }
}

# measure NAME: wrk against the running server; prints and sets $rps
measure() {
  wrk -t"$wrk_threads" -c"$conns" -d2s "http://127.0.0.1:$port/healthz" >/dev/null  # warm-up
  local out; out=$(wrk -t"$wrk_threads" -c"$conns" -d"$duration" --latency "http://127.0.0.1:$port/healthz")
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  local p50 p99 errs
  p50=$(awk '$1=="50%"{print $2}' <<<"$out"); p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errs=$(awk '/Non-2xx|Socket errors/' <<<"$out" | tr '\n' ' ')
  printf '%-34s %10s req/s   p50 %-8s p99 %-8s %s\n' "$1" "$rps" "$p50" "$p99" "$errs"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

echo "wrk -t$wrk_threads -c$conns -d$duration /healthz, $rounds rounds; server io threads: $io_threads; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
base_all=; ours_all=; log_all=
for r in $(seq "$rounds"); do
  echo "-- round $r"
  start "$base"; measure "baseline (sync Beast, thread/conn)"; base_all+="$rps"$'\n'; cleanup
  start "$ours" "$io_threads" 0; measure "cnx api (access log off)"; ours_all+="$rps"$'\n'; cleanup
  start "$ours" "$io_threads" 1; measure "cnx api (access log on, /dev/null)"; log_all+="$rps"$'\n'; cleanup
done
base_med=$(printf '%s' "$base_all" | median)
ours_med=$(printf '%s' "$ours_all" | median)
log_med=$(printf '%s' "$log_all" | median)
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v a="$ours_med" -v b="$base_med" -v c="$log_med" 'BEGIN {
  printf "median req/s: baseline %.0f, cnx api %.0f (access log off), %.0f (access log on)\n", b, a, c
  printf "ratio vs baseline: %.2f (access log off), %.2f (access log on)\n", a / b, c / b }'

# The domain REST API against PostgreSQL, beside pgbench -S on the same cluster.
"$(dirname "$0")/api.sh" "$build"
