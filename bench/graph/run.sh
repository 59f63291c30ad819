#!/usr/bin/env bash
# bench/graph/run.sh BUILD_DIR: embedded graph store figures on a 1,000,000-edge graph.
set -euo pipefail
build=${1:-build/release}
dir=$(mktemp -d "${TMPDIR:-/tmp}/cnx_graph_bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$build/bench/graph/graph_bench" --dir "$dir/store" --edges 1000000 --nodes 100000 --queries 2000
"$(dirname "$0")/cte.sh" "$build"
"$(dirname "$0")/projection.sh" "$build"
"$build/bench/graph/tombstone_bench" --dir "$dir/tombstones"
