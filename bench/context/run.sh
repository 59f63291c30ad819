#!/usr/bin/env bash
# bench/context/run.sh BUILD_DIR: context assembly latency (p50/p95/p99) on a
# project of 100,000 chunks in the test PostgreSQL cluster (started here),
# with search alone as the peer. Environment: CHUNKS (default 100000),
# QUERIES (200). Extra arguments go to context_bench (--searcher lexical|hybrid).
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
cmake --build "$build" --target context_bench cnx_testpg >/dev/null
if ! "$build/src/schema/cnx_testpg" start "$build/testpg" >/dev/null 2>&1; then
  echo "bench/context: cannot start the test cluster in $build/testpg" >&2
  exit 1
fi
trap '"$build/src/schema/cnx_testpg" stop "$build/testpg" >/dev/null 2>&1 || true' EXIT
"$build/bench/context/context_bench" --chunks "${CHUNKS:-100000}" --queries "${QUERIES:-200}" "${@:2}"
