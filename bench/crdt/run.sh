#!/usr/bin/env bash
# bench/crdt/run.sh BUILD_DIR [RUNS]: the automerge-paper trace replayed by
# cnx::crdt (crdt_trace_bench) and by JavaScript Yjs (bench-trace.mjs) in the
# same run; prints both medians and the ratios.
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
runs=${2:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${CNX_SHARED_DIR:-$root/../shared}
trace=$shared/testdata/yjs/traces/automerge-paper.json.gz
peer=$build/peers/yjs
"$root/scripts/peer-setup.sh" yjs "$peer"
work=$build/bench/crdt/data
mkdir -p "$work"
if [ ! -s "$work/patches.txt" ]; then
  node -e '
    const fs = require("fs"), zlib = require("zlib");
    const t = JSON.parse(zlib.gunzipSync(fs.readFileSync(process.argv[1])).toString("utf8"));
    const out = [];
    t.txns.forEach((x, i) => { for (const [p, d, s] of x.patches) out.push(i + " " + p + " " + d + " " + JSON.stringify(s)) });
    fs.writeFileSync(process.argv[2], out.join("\n") + "\n");
    fs.writeFileSync(process.argv[3], t.endContent);
  ' "$trace" "$work/patches.txt" "$work/end.txt"
fi
ours=()
for ((i = 0; i < runs; i++)); do
  ours+=("$("$build/bench/crdt/crdt_trace_bench" "$work/patches.txt" "$work/end.txt")")
done
theirs=$(cd "$peer" && node bench-trace.mjs --runs "$runs" --trace "$trace" | tail -1)
printf '%s\n' "${ours[@]}" > "$work/ours.jsonl"
echo "$theirs" > "$work/yjs.json"
node -e '
  const fs = require("fs");
  const ours = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  const yjs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const med = k => { const v = ours.map(r => r[k]).sort((a, b) => a - b); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2 };
  const keys = ["localApplyMs", "encodeMs", "encodedBytes", "loadMs", "remoteReplayMs", "updatesTotalBytes", "peakRssMB", "peakRssWithRemoteMB"];
  const rows = keys.map(k => ({ figure: k, cnx: +med(k).toFixed(2), yjs: yjs[k], ratio_yjs_over_cnx: yjs[k] !== undefined ? +(yjs[k] / med(k)).toFixed(2) : null }));
  console.log(JSON.stringify({ runs: ours.length, node: yjs.node, yjs: yjs.yjs, load: require("os").loadavg().map(x => +x.toFixed(2)) }));
  for (const r of rows) console.log(JSON.stringify(r));
' "$work/ours.jsonl" "$work/yjs.json"
