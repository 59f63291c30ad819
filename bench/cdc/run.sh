#!/usr/bin/env bash
# Pure pgoutput decode speed on the captured golden streams (no I/O in the timed loop).
set -euo pipefail
build=${1:-build/release}
"$build/bench/cdc/cdc_decode_bench" "${2:-2}"
