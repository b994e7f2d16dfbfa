#!/usr/bin/env bash
# sluice end to end on the local stack: starts what is missing, creates a demo topic and table, produces sample
# orders, runs the service until every offset is committed, and shows the rows, the offsets and the throughput.
# SLUICE_DEMO_RECORDS sets how many records (default 200000); SLUICE_DEMO_KEEP=1 leaves a started broker running.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
cd "$stack_root"
stack_node_deps
stack_postgres
[[ "${SLUICE_DEMO_KEEP:-0}" == 1 ]] || trap stack_down EXIT
stack_kafka
node dist/demo/run-demo.js
