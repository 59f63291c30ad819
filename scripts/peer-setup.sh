#!/usr/bin/env bash
# peer-setup.sh TOOL DEST: copies ../shared/tools/TOOL to DEST and installs its pinned
# npm packages there (npm ci), once; later calls are no-ops while the lock file is
# unchanged. Never writes into ../shared.
set -euo pipefail
tool=$1 dest=$2
root=$(cd "$(dirname "$0")/.." && pwd)
src=${CNX_SHARED_DIR:-$root/../shared}/tools/$tool
[ -d "$src" ] || { echo "peer-setup: no such tool: $src" >&2; exit 1; }
mkdir -p "$dest"
if [ ! -f "$src/package-lock.json" ]; then
  # A tool without npm dependencies: copying it is all there is to do.
  mkdir -p "$dest" && chmod -R u+w "$dest" && cp -r "$src"/. "$dest"/ && chmod -R u+w "$dest"
  exit 0
fi
if [ -f "$dest/.installed" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  chmod -R u+w "$dest" && cp -r "$src"/. "$dest"/ && chmod -R u+w "$dest"  # refresh scripts
  exit 0
fi
exec 9>"$dest.lock"
flock 9
cp -r "$src"/. "$dest"/
chmod -R u+w "$dest"
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
touch "$dest/.installed"
