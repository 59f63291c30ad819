#!/usr/bin/env bash
# bench/text/run.sh BUILD_DIR: tokenizer + chunker figures beside the JS peers,
# measured in the same run on the same corpus.
#   1. the corpus (make-corpus.sh, 10 MB from Debian packages) into BUILD_DIR/bench/text/corpus
#   2. the peers (scripts/peer-setup.sh tokenizer) into BUILD_DIR/bench/text/peers
#   3. bench-peers.mjs (peers) then text_bench (ours), which prints the ratios.
# RUNS (default 5) and PATHO_BUDGET (seconds per pathological step for peers, default 8) may be set.
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
shared=${CNX_SHARED_DIR:-$root/../shared}
out=$build/bench/text
mkdir -p "$out"
cmake --build "$build" --target text_bench >/dev/null
if [ ! -s "$out/corpus/all.txt" ]; then
  bash "$shared/tools/tokenizer/make-corpus.sh" "$out/corpus"
fi
"$root/scripts/peer-setup.sh" tokenizer "$out/peers"
runs=${RUNS:-5}
echo "== peers (node $(node --version))"
(cd "$out/peers" && node bench-peers.mjs --corpus "$out/corpus/all.txt" --runs "$runs" \
  --patho-budget "${PATHO_BUDGET:-8}" --out "$out/peers.json")
echo "== cnx"
"$build/bench/text/text_bench" --corpus "$out/corpus/all.txt" --peers "$out/peers.json" --runs "$runs" \
  --out "$out/result.json"
