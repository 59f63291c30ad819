#!/usr/bin/env bash
# bench/vector/run.sh BUILD_DIR [N]: our HnswIndex through the VectorIndex
# interface vs raw hnswlib 0.6.2 with the same parameters (M=16, efC=200,
# ef=64) on the same N x 384 vectors (default 100000), unfiltered and with a
# 10% tenant filter, plus the exact-scan/graph threshold sweep; once per
# storage of our graphs (STORAGES, default "float32 bfloat16"; raw hnswlib
# always stores float32).
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
cmake --build "$build" --target vector_bench >/dev/null
for storage in ${STORAGES:-float32 bfloat16}; do
  "$build/bench/vector/vector_bench" --n "${2:-${N:-100000}}" --queries "${QUERIES:-1000}" \
    --clusters "${CLUSTERS:-1000}" --storage "$storage"
done
