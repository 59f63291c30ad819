#!/usr/bin/env bash
# bench/context/run.sh BUILD_DIR:
#  1. context assembly latency (p50/p95/p99) on a project of 100,000 chunks in the
#     test PostgreSQL cluster (started here), with search alone as the peer;
#  2. packing quality on the PostgreSQL 15 documentation (postgresql-doc-15), when
#     the build has context_quality_bench: the share of questions whose relevant
#     section makes it into an 8,000-token window, against retrieval recall@10.
# Environment: CHUNKS (default 100000), QUERIES (200), DOCS (html dir).
# Extra arguments go to context_bench (--searcher lexical|hybrid).
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
cmake --build "$build" --target context_bench cnx_testpg >/dev/null
if ! "$build/src/schema/cnx_testpg" start "$build/testpg" >/dev/null 2>&1; then
  echo "bench/context: cannot start the test cluster in $build/testpg" >&2
  exit 1
fi
trap '"$build/src/schema/cnx_testpg" stop "$build/testpg" >/dev/null 2>&1 || true' EXIT
"$build/bench/context/context_bench" --chunks "${CHUNKS:-100000}" --queries "${QUERIES:-200}" "${@:2}"
docs=${DOCS:-/usr/share/doc/postgresql-doc-15/html}
if cmake --build "$build" --target context_quality_bench >/dev/null 2>&1; then
  if [ -d "$docs" ]; then
    "$build/bench/context/context_quality_bench" --docs "$docs"
  else
    echo "bench/context: $docs not found (apt-get install postgresql-doc-15): no packing-quality figure" >&2
  fi
else
  echo "bench/context: this build has no context_quality_bench (needs bench/search/corpus.h and HybridSearcher)" >&2
fi
