#!/usr/bin/env bash
# The chaos test's long form: 200,000 records (CHAOS_RECORDS) through three sluice processes under kills, a database
# outage and rebalances, then a check of both tables and the DLQ. `npm test` runs a 12,000-record short form.
# Installs what is missing, starts what is not running, stops what it started. Member logs: .local/chaos/<group>/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
stack_up
npm run build
CHAOS_RECORDS="${CHAOS_RECORDS:-200000}" npx vitest run test/chaos "$@"
