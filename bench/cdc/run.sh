#!/usr/bin/env bash
# Change-capture benchmarks:
#  1. pure pgoutput decode speed on the captured golden streams (no I/O while timed);
#  2. relay backlog catch-up against a private PostgreSQL cluster, vs pg_recvlogical.
set -euo pipefail
build=${1:-build/release}
"$build/bench/cdc/cdc_decode_bench" "${CDC_BENCH_SECONDS:-2}"
"$build/bench/cdc/cdc_catchup_bench" "${CDC_CATCHUP_ROWS:-200000}" 100
"$build/bench/cdc/cdc_latency_bench" "${CDC_LATENCY_SECONDS:-60}" 1000 5000
