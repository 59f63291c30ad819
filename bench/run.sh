#!/usr/bin/env bash
# Runs every module benchmark (bench/<module>/run.sh BUILD_DIR) in turn.
set -euo pipefail
build=${1:-build/release}
here=$(cd "$(dirname "$0")" && pwd)
for s in "$here"/*/run.sh; do
  [ -x "$s" ] || continue
  echo "== $(basename "$(dirname "$s")")"
  "$s" "$build"
done
