#!/usr/bin/env bash
# peer-setup.sh TOOL DEST: copies ../shared/tools/TOOL to DEST and installs its pinned
# npm packages there (npm ci), once; later calls are no-ops while the lock file is
# unchanged. Never writes into ../shared. TOOL may also be an absolute path: a
# folder of this repository (a test peer), copied the same way (never its node_modules).
set -euo pipefail
tool=$1 dest=$2
root=$(cd "$(dirname "$0")/.." && pwd)
case $tool in
  /*) src=$tool ;;
  *) src=${CNX_SHARED_DIR:-$root/../shared}/tools/$tool ;;
esac
[ -d "$src" ] || { echo "peer-setup: no such tool: $src" >&2; exit 1; }
mkdir -p "$dest"
# Copies the tool's files that differ into DEST, each replaced atomically (a
# temporary file renamed over it): tests running in parallel may be reading
# them, and an in-place copy would show them a truncated script.
refresh() {
  (cd "$src" && find . -path ./node_modules -prune -o -type f -print) | while IFS= read -r f; do
    cmp -s "$src/$f" "$dest/$f" && continue
    mkdir -p "$(dirname "$dest/$f")"
    tmp=$(mktemp "$(dirname "$dest/$f")/.peer-setup.XXXXXX")
    cp "$src/$f" "$tmp" && chmod --reference="$src/$f" "$tmp" && chmod u+w "$tmp" && mv -f "$tmp" "$dest/$f"
  done
}
if [ ! -f "$src/package-lock.json" ]; then
  refresh  # a tool without npm dependencies: copying it is all there is to do
  exit 0
fi
if [ -f "$dest/.installed" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  refresh  # scripts may have changed
  exit 0
fi
exec 9>"$dest.lock"
flock 9
# Another caller may have installed it while this one waited for the lock.
if [ -f "$dest/.installed" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
  refresh
  exit 0
fi
rm -f "$dest/.installed"
refresh
(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
touch "$dest/.installed"
