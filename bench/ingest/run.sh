#!/usr/bin/env bash
# Ingestion throughput end to end: `cnx ingest` sends a corpus to `cnx serve`
# (embedded cluster, built-in lexical embedder) over HTTP, and the clock runs
# until GET /v1/projects/{id}/ingest-status shows every chunk embedded
# (pending 0, embedded = chunks). Prints chunks/s against the aim (2,000 on 2
# cores) and, measured in the same run on the same chunks, two references:
#   - the embedder alone: `cnx embed` over the chunk texts (JSON lines);
#   - PostgreSQL alone: psql \copy of the same chunk texts into a plain table.
# Also the server's CPU time per chunk (cnx + its PostgreSQL), which depends
# less on other load on the machine than the wall-clock figure.
# Usage: bench/ingest/run.sh [BUILD_DIR]
#   env: CORPUS=dir (default /usr/share/doc/postgresql-doc-15/html, else docs/ + src/)
#        JOBS=4 (cnx ingest --jobs)
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cnx=$build/src/cli/cnx
jobs=${JOBS:-4}
[ -x "$cnx" ] || { echo "build the cnx target first"; exit 1; }
corpus=${CORPUS:-/usr/share/doc/postgresql-doc-15/html}
if [ ! -d "$corpus" ]; then corpus="$repo/docs $repo/src"; fi

work=$(mktemp -d /tmp/cnx-ingest-bench.XXXXXX)
chmod 755 "$work"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$cnx" serve --data-dir "$work/data" --listen "127.0.0.1:$port" --rate-limit 0 >"$work/serve.log" 2>&1 &
pid=$!
api=http://127.0.0.1:$port
for _ in $(seq 600); do curl -sf "$api/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$api/readyz" >/dev/null || { echo "cnx serve did not become ready"; cat "$work/serve.log"; exit 1; }

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
post() { curl -sf -X POST "$api$1" -H 'Content-Type: application/json' ${token:+-H "Authorization: Bearer $token"} -d "$2"; }
token=
token=$(post /v1/signup '{"tenantName":"Bench","email":"bench@example.com","password":"bench password"}' | json '["token"]')
program=$(post /v1/programs '{"name":"Bench"}' | json '["id"]')
project=$(post /v1/projects "{\"programId\":\"$program\",\"name\":\"Bench\"}" | json '["id"]')

# CPU seconds of the server process and its PostgreSQL cluster (postmaster,
# its live children, and the children it has reaped).
server_cpu() {
  python3 - "$pid" "$work/data/pg/postmaster.pid" <<'PY'
import os, sys
hz = os.sysconf('SC_CLK_TCK')
def stat(p):
    s = open('/proc/%d/stat' % p).read(); f = s[s.rindex(')') + 2:].split()
    return int(f[1]), [int(x) for x in f[11:15]]
cnx = int(sys.argv[1]); pm = int(open(sys.argv[2]).read().split()[0])
own = sum(stat(cnx)[1][:2])
pg = sum(stat(pm)[1])
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            ppid, t = stat(int(p))
            if ppid == pm: pg += sum(t[:2])
        except Exception: pass
print(own / hz, pg / hz)
PY
}
status() { curl -sf "$api/v1/projects/$project/ingest-status" -H "Authorization: Bearer $token"; }

echo "corpus: $corpus; cnx ingest --jobs $jobs; $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
cpu0=$(server_cpu)
t0=$(date +%s.%N)
# shellcheck disable=SC2086
"$cnx" ingest $corpus --project "$project" --server "$api" --token "$token" --jobs "$jobs" --json --no-progress \
  >"$work/ingest.json"
t1=$(date +%s.%N)
while :; do
  st=$(status)
  pending=$(json '["pending"]' <<<"$st")
  left=$(python3 -c "import json,sys; s=json.loads(sys.argv[1]); print(s['chunks']-s['embedded'])" "$st")
  [ "$pending" = 0 ] && [ "$left" = 0 ] && break
  # A status call walks the project's chunks: poll rarely while much is left,
  # often near the end (the wait is at most ~1/4 of the remaining time at 2,000/s).
  sleep "$(python3 -c "print(max(0.05, min(1.0, $left / 8000)))")"
done
t2=$(date +%s.%N)
cpu1=$(server_cpu)
chunks=$(json '["chunks"]' <<<"$st")
echo "ingest: $(cat "$work/ingest.json")"
echo "status: $st"

# References on the same chunk texts.
pgurl=$("$cnx" pg url --data-dir "$work/data" --db cnx)
psql "$pgurl" -qAtc "SELECT json_build_object('text', c.content) FROM content_chunks c JOIN content_items i ON i.id = c.content_item_id WHERE i.project_id = '$project'" >"$work/chunks.jsonl"
psql "$pgurl" -qAtc "COPY (SELECT c.content FROM content_chunks c JOIN content_items i ON i.id = c.content_item_id WHERE i.project_id = '$project') TO STDOUT" >"$work/chunks.copy"
e0=$(date +%s.%N)
"$cnx" embed <"$work/chunks.jsonl" >/dev/null
e1=$(date +%s.%N)
psql "$pgurl" -qc "CREATE TABLE bench_copy (content text)" >/dev/null
c0=$(date +%s.%N)
psql "$pgurl" -qc "\\copy bench_copy FROM '$work/chunks.copy'" >/dev/null
c1=$(date +%s.%N)
psql "$pgurl" -qc "DROP TABLE bench_copy" >/dev/null
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# How the embedding worker took the jobs: each batch stores its vectors in one
# transaction (chunk_embeddings.written_xid); a completed job leaves no row.
echo "embedding batches: $(psql "$pgurl" -qAtc "SELECT count(DISTINCT written_xid) || ' for ' || count(*) || ' embeddings' FROM chunk_embeddings")"
echo "embedding_jobs writes: $(psql "$pgurl" -qAtc "SELECT n_tup_ins || ' inserted, ' || n_tup_upd || ' updated (' || n_tup_hot_upd || ' HOT), ' || n_tup_del || ' deleted, ' || n_live_tup || ' rows left' FROM pg_stat_user_tables WHERE relname = 'embedding_jobs'")"

python3 - "$chunks" "$t0" "$t1" "$t2" "${cpu0% *}" "${cpu1% *}" "$e0" "$e1" "$c0" "$c1" "${cpu0#* }" "${cpu1#* }" <<'PY'
import sys
chunks = int(sys.argv[1]); t0, t1, t2, own0, own1, e0, e1, c0, c1, pg0, pg1 = map(float, sys.argv[2:])
cpu0, cpu1 = own0 + pg0, own1 + pg1
rate = chunks / (t2 - t0)
print("end to end: %d chunks in %.2f s (HTTP ingest %.2f s, then embedding until pending 0 %.2f s) = %.0f chunks/s"
      % (chunks, t2 - t0, t1 - t0, t2 - t1, rate))
print("server CPU: %.1f s = %.2f ms per chunk (cnx serve %.2f + its PostgreSQL %.2f)"
      % (cpu1 - cpu0, 1000 * (cpu1 - cpu0) / chunks, 1000 * (own1 - own0) / chunks, 1000 * (pg1 - pg0) / chunks))
emb = chunks / (e1 - e0); cp = chunks / (c1 - c0)
print("peer, embedder alone (cnx embed, lexical-hash-v1, 1 thread): %.0f chunks/s; ratio end-to-end / embedder %.2f"
      % (emb, rate / emb))
print("peer, PostgreSQL alone (psql \\copy of the chunk texts into a plain table): %.0f chunks/s; ratio %.3f"
      % (cp, rate / cp))
print("aim: >= 2000 chunks/s on 2 cores -> %s (%.2f of the aim)" % ("reached" if rate >= 2000 else "missed", rate / 2000))
PY
