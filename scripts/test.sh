#!/usr/bin/env bash
# The whole test suite (unit and integration) against a real Kafka broker and a real PostgreSQL.
# Installs what is missing, starts what is not running, stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/stack.sh"
source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"
tools_install
stack_up
stack_registry_fetch
npm test -- "$@"
