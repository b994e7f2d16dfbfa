#!/usr/bin/env bash
# sluice end to end on the local stack: starts what is missing, creates a demo topic and table, produces sample
# orders, runs the service until every offset is committed, and shows the rows, the offsets and the throughput.
# SLUICE_DEMO_RECORDS sets how many records (default 200000); SLUICE_DEMO_KEEP=1 leaves a started broker running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
if [[ "${SLUICE_DEMO_KEEP:-0}" == 1 ]]; then stack_up keep; else stack_up; fi
node dist/demo/run-demo.js
