#!/usr/bin/env bash
# bench/search/run.sh BUILD_DIR: (a) recall@10 and MRR@10 of lexical, vector,
# hybrid and an in-process BM25 baseline on the PostgreSQL 15 documentation
# (Debian package postgresql-doc-15), (b) hybrid search latency at 100,000
# chunks. Both run through HybridSearcher against a real PostgreSQL: the test
# cluster in BUILD_DIR/testpg (started here when it is not running).
# Environment: DOCS (html dir), CHUNKS (default 100000), QUERIES (1000).
set -euo pipefail
build=$(cd "${1:-build/release}" && pwd)
docs=${DOCS:-/usr/share/doc/postgresql-doc-15/html}
if [ ! -d "$docs" ]; then
  echo "bench/search: $docs not found (apt-get install postgresql-doc-15)" >&2
  exit 1
fi
cmake --build "$build" --target search_bench cnx_testpg >/dev/null
started=0
if ! "$build/src/schema/cnx_testpg" start "$build/testpg" >/dev/null 2>&1; then
  echo "bench/search: cannot start the test cluster in $build/testpg" >&2
  exit 1
fi
started=1
trap '[ $started = 1 ] && "$build/src/schema/cnx_testpg" stop "$build/testpg" >/dev/null 2>&1 || true' EXIT
"$build/bench/search/search_bench" --docs "$docs" --chunks "${CHUNKS:-100000}" --queries "${QUERIES:-1000}" "${@:2}"
