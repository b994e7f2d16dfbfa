#!/usr/bin/env bash
# npm run bench: sluice against the physical limits, a naive consumer and Kafka Connect + Debezium JDBC sink.
# Brings the stack up like the tests do (stops what it started), builds sluice and the benchmark, then runs it.
# Options go to bench/run.ts: `npm run bench -- --full`, `npm run bench -- --help`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_up
stack_log "building the benchmark"
npx tsc -p bench
node .local/bench-dist/run.js "$@"
