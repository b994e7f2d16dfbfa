# Sourced by scripts/test.sh and scripts/demo.sh: makes sure dependencies, PostgreSQL and a Kafka broker are there.
#   KAFKA_BROKERS set  → that broker is used as it is.
#   otherwise          → a local single-node broker (scripts/kafka/kafka.sh; needs Java 17+ and Maven),
#                        or, without Java but with Docker, the broker of docker-compose.yml.
#   DATABASE_URL       → defaults to the local server, postgres://postgres@127.0.0.1:5432/test.
# Sets STACK_STARTED_KAFKA=1 when it started a broker, so the caller can stop it.

stack_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_STARTED_KAFKA=0
STACK_STARTED_COMPOSE=0

stack_log() { printf '==> %s\n' "$*" >&2; }

stack_node_deps() {
  if [[ ! -d "$stack_root/node_modules" || "$stack_root/package-lock.json" -nt "$stack_root/node_modules/.package-lock.json" || -n "${CI:-}" ]]; then
    stack_log "installing node dependencies (npm ci)"
    (cd "$stack_root" && npm ci --no-audit --no-fund)
  fi
  stack_log "building sluice"
  (cd "$stack_root" && npm run --silent build)
}

stack_postgres() {
  local user_set=${DATABASE_URL:+1}
  export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
  local check='const c=new (require("pg").Client)({connectionString:process.env.DATABASE_URL});c.connect().then(()=>c.query("select 1")).then(()=>c.end()).then(()=>process.exit(0),()=>process.exit(1))'
  if (cd "$stack_root" && node -e "$check"); then return 0; fi
  if command -v pg_ctlcluster >/dev/null && [[ -d /etc/postgresql ]]; then
    stack_log "PostgreSQL is not answering; starting the local cluster"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
  elif [[ -z "$user_set" ]] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    stack_log "starting PostgreSQL from docker-compose.yml"
    (cd "$stack_root" && docker compose up -d --wait postgres)
    STACK_STARTED_COMPOSE=1
    export DATABASE_URL=postgres://postgres:sluice@127.0.0.1:5432/sluice
  fi
  local deadline=$((SECONDS + 60))
  until (cd "$stack_root" && node -e "$check"); do
    if ((SECONDS > deadline)); then
      stack_log "PostgreSQL is not reachable at DATABASE_URL (password hidden): start it, or set DATABASE_URL"
      return 1
    fi
    sleep 0.5
  done
}

stack_kafka() {
  if [[ -n "${KAFKA_BROKERS:-}" ]]; then
    stack_log "using the Kafka broker(s) at $KAFKA_BROKERS"
    return 0
  fi
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    if ! "$stack_root/scripts/kafka/kafka.sh" status >/dev/null 2>&1; then
      stack_log "starting a local Kafka broker (KRaft, single node)"
      "$stack_root/scripts/kafka/kafka.sh" start
      STACK_STARTED_KAFKA=1
    fi
    export KAFKA_BROKERS="127.0.0.1:${SLUICE_KAFKA_PORT:-9092}"
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    stack_log "starting Kafka from docker-compose.yml"
    (cd "$stack_root" && docker compose up -d --wait kafka)
    STACK_STARTED_COMPOSE=1
    export KAFKA_BROKERS=127.0.0.1:9092
  else
    stack_log "no Kafka broker: set KAFKA_BROKERS, or install Java 17+ and Maven (local broker), or Docker"
    return 1
  fi
}

# The schema registry's application (Apicurio Registry, from Maven Central), for the tests of the registry formats:
# each of those test files starts a registry of its own from it. Without Java and Maven those tests are skipped.
stack_registry_fetch() {
  if command -v java >/dev/null && command -v mvn >/dev/null; then
    "$stack_root/scripts/registry/registry.sh" fetch
  fi
}

# Everything a command needs, in order; what it starts is stopped when the calling script exits, unless `keep`.
stack_up() {
  cd "$stack_root"
  stack_node_deps
  stack_postgres
  [[ "${1:-}" == keep ]] || trap stack_down EXIT
  stack_kafka
}

stack_down() {
  if [[ "$STACK_STARTED_KAFKA" == 1 ]]; then
    stack_log "stopping the local Kafka broker"
    "$stack_root/scripts/kafka/kafka.sh" stop
  fi
  if [[ "$STACK_STARTED_COMPOSE" == 1 ]]; then
    (cd "$stack_root" && docker compose down)
  fi
}
