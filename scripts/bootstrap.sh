#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing ContextNexus
# need. Idempotent and quiet when everything is present; uses sudo when not root.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  clang-16 libclang-rt-16-dev clang-format clang-tidy
  # libraries
  libpq-dev libboost-dev libboost-system-dev libssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libcli11-dev libtomlplusplus-dev libpcre2-dev libsodium-dev librdkafka-dev libhnswlib-dev libmd4c-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the embedded database and its tools (initdb, pg_ctl, pgbench, pg_recvlogical)
  postgresql-15 postgresql-client-15 postgresql-15-wal2json postgresql-doc-15
  # test and benchmark peers
  nodejs npm wrk procps curl
  # the browser of the collaboration editors test (src/collab/tests/browser)
  chromium
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# A node already on PATH (for example a newer one) is good enough for the test peers.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
[[ ${#missing[@]} -eq 0 ]] && exit 0

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null 2>&1 || { echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
