#!/usr/bin/env bash
# Kafka Connect (standalone worker) + the Debezium JDBC sink connector: the Kafka Connect competitor
# in sluice's benchmark. It reads one topic of JsonConverter envelopes ({"schema":...,"payload":...})
# with plain string keys and upserts the payloads into an existing PostgreSQL table, last value per
# primary key winning. No Docker: the jars come from Maven Central (bench/connect/pom.xml) and
# everything runs on one classpath in one JVM.
#
#   bench/connect/connect.sh fetch   download the jars into .local/connect/libs (skipped once complete)
#   bench/connect/connect.sh run     fetch if needed, write the worker and connector properties into
#                                    $CONNECT_WORK_DIR, then exec the worker in the foreground
#
# `run` execs java, so the pid of the process that started `connect.sh run` IS the JVM: read
# /proc/<pid> for CPU time and peak RSS, and stop it with SIGTERM: the worker stops the task, commits
# the consumer offsets of what it has flushed, and exits with status 143 (128 + SIGTERM, as any JVM
# stopped by a signal does, shutdown hooks and all) within about a second.
#
# Environment for `run`:
#   CONNECT_TOPIC       topic to read (required)
#   CONNECT_TABLE       existing target table, e.g. bench_orders or public.bench_orders (required);
#                       the connector neither creates nor alters it (schema.evolution=none)
#   CONNECT_NAME        connector name (default sluice-bench); its consumer group is connect-<name>
#   KAFKA_BROKERS       bootstrap servers (default 127.0.0.1:9092)
#   DATABASE_URL        postgres://user[:password]@host[:port]/db[?params]
#                       (default postgres://postgres@127.0.0.1:5432/test); turned into a JDBC URL
#   CONNECT_PK_FIELDS   primary key fields of the record value (default id)
#   CONNECT_BATCH_SIZE  records per flush to PostgreSQL and per consumer poll (default 5000)
#   CONNECT_TASKS       tasks.max (default 1); at most one task per partition does any work
#   CONNECT_PG_UNNEST   true|false: one INSERT ... SELECT FROM UNNEST(...) per batch (default true)
#   CONNECT_REST_PORT   REST listener on 127.0.0.1 (default 8083); GET /connectors/<name>/status
#   CONNECT_HEAP        heap flags (default -Xms256m -Xmx1g)
#   CONNECT_JVM_OPTS    extra JVM flags, appended last
#   CONNECT_WORK_DIR    where the properties and the (unused by sinks) offsets file go
#                       (default .local/connect/run)
#   CONNECT_WORKER_PROPS, CONNECT_CONNECTOR_PROPS
#                       extra key=value lines appended to the worker / connector properties
#                       (later lines win), for experiments
#
# The records must be flat structs with a schema (value.converter.schemas.enable=true). The value
# fields map to columns by name; with primary.key.mode=record_value the Kafka key is not used.
#
# Log lines worth watching on stdout (start-up takes ~4-5 s before the first row lands):
#   "Database version"                                   the task reached PostgreSQL (Debezium)
#   "Sink task finished initialization and start"        the task is up (WorkerSinkTask)
#   "Notifying assignor about the new Assignment"        its consumer has its partitions
#   "Task threw an uncaught and unrecoverable exception"   the task died (e.g. the table does not
#       exist: "Table '...' cannot be created because schema evolution is disabled"). The worker
#       keeps running and consuming nothing; GET /connectors/<name>/status shows the task FAILED
#       with its trace.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
home="$root/.local/connect"
libs="$home/libs"

log() { printf 'connect.sh: %s\n' "$*" >&2; }

fetch() {
  if [[ -f "$libs/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn is not installed: it is needed to fetch the Kafka Connect jars"; exit 1; }
  command -v java >/dev/null || { log "java is not installed: Kafka Connect and Debezium 3 need Java 17 or newer"; exit 1; }
  log "fetching Kafka Connect, the Debezium JDBC sink and the PostgreSQL driver from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
  log "fetched $(find "$libs" -name '*.jar' | wc -l) jars"
}

# Percent-decoding for the user and password parts of DATABASE_URL.
urldecode() { local s="${1//\\/\\\\}"; printf '%b' "${s//%/\\x}"; }

# A value for a .properties file: backslashes doubled, leading blanks kept.
prop() { local s="${1//\\/\\\\}"; [[ "$s" == " "* ]] && s="\\$s"; printf '%s' "$s"; }

# DATABASE_URL -> jdbc_url, db_user, db_password
parse_database_url() {
  local url="$1" rest userinfo hostport db query=""
  [[ "$url" =~ ^postgres(ql)?:// ]] || { log "DATABASE_URL must start with postgres:// or postgresql:// (got: $url)"; exit 2; }
  rest="${url#*://}"
  if [[ "$rest" == *"?"* ]]; then query="${rest#*\?}"; rest="${rest%%\?*}"; fi
  userinfo=""
  if [[ "$rest" == *"@"* ]]; then userinfo="${rest%@*}"; rest="${rest##*@}"; fi
  hostport="${rest%%/*}"
  db=""
  [[ "$rest" == */* ]] && db="${rest#*/}"
  [[ -n "$hostport" ]] || hostport="127.0.0.1"
  [[ "$hostport" == *:* || "$hostport" == \[*\] ]] || hostport="$hostport:5432"
  db_user="" db_password=""
  if [[ -n "$userinfo" ]]; then
    if [[ "$userinfo" == *:* ]]; then
      db_user=$(urldecode "${userinfo%%:*}")
      db_password=$(urldecode "${userinfo#*:}")
    else
      db_user=$(urldecode "$userinfo")
    fi
  fi
  [[ -n "$db_user" ]] || db_user="${PGUSER:-postgres}"
  # Debezium's docs for use.reduction.buffer: with PostgreSQL, add reWriteBatchedInserts to the JDBC
  # URL so the driver sends a JDBC batch as multi-row statements.
  jdbc_url="jdbc:postgresql://$hostport/$db?reWriteBatchedInserts=true"
  [[ -z "$query" ]] || jdbc_url="$jdbc_url&$query"
}

run() {
  local topic="${CONNECT_TOPIC:-}" table="${CONNECT_TABLE:-}"
  [[ -n "$topic" ]] || { log "CONNECT_TOPIC is not set"; exit 2; }
  [[ -n "$table" ]] || { log "CONNECT_TABLE is not set (the existing table to upsert into)"; exit 2; }
  local name="${CONNECT_NAME:-sluice-bench}"
  local brokers="${KAFKA_BROKERS:-127.0.0.1:9092}"
  local pk="${CONNECT_PK_FIELDS:-id}"
  local batch="${CONNECT_BATCH_SIZE:-5000}"
  local tasks="${CONNECT_TASKS:-1}"
  local unnest="${CONNECT_PG_UNNEST:-true}"
  local rest_port="${CONNECT_REST_PORT:-8083}"
  local heap="${CONNECT_HEAP:--Xms256m -Xmx1g}"
  local work="${CONNECT_WORK_DIR:-$home/run}"
  [[ "$batch" =~ ^[1-9][0-9]*$ ]] || { log "CONNECT_BATCH_SIZE must be a positive integer (got: $batch)"; exit 2; }
  [[ "$tasks" =~ ^[1-9][0-9]*$ ]] || { log "CONNECT_TASKS must be a positive integer (got: $tasks)"; exit 2; }
  [[ "$unnest" == true || "$unnest" == false ]] || { log "CONNECT_PG_UNNEST must be true or false (got: $unnest)"; exit 2; }
  local fetch_bytes=$((batch * 2048))
  ((fetch_bytes >= 1048576)) || fetch_bytes=1048576
  local jdbc_url db_user db_password
  parse_database_url "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"

  fetch
  mkdir -p "$work"
  local worker="$work/worker.properties" connector="$work/connector.properties"

  cat >"$worker" <<PROPS
# Kafka Connect standalone worker, written by bench/connect/connect.sh.
bootstrap.servers=$(prop "$brokers")
# The Kafka key is a plain UTF-8 string; the value is a JsonConverter envelope with its schema.
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=true
# Only source connectors use this file; sink tasks commit their progress to the consumer group
# connect-$(prop "$name").
offset.storage.file.filename=$(prop "$work/connect.offsets")
# Kafka Connect docs (offset.flush.interval.ms, default 60000): how often the worker commits the
# offsets of what the task has flushed. 1 s, so the committed group offsets show progress quickly.
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$rest_port
# The connector is on the classpath (no plugin.path). Kafka Connect docs (plugin.discovery): with
# service_load the worker finds plugins through their ServiceLoader manifests only, and skips the
# reflective scan of every class on the classpath that the default (hybrid_warn) does: about 7 s of
# start-up here. All the plugins used here ship manifests (the worker warns as much under hybrid_warn).
plugin.discovery=service_load
# Worker-level consumer settings (the consumer.* prefix applies them to every sink task's consumer).
consumer.auto.offset.reset=earliest
# Debezium JDBC docs (batch.size): a max.poll.records below batch.size caps every batch at
# max.poll.records, so the consumer returns up to a whole batch per poll.
consumer.max.poll.records=$batch
# Kafka consumer docs (max.partition.fetch.bytes, default 1 MiB): the most a fetch returns per
# partition. At the default a poll over 4 partitions of ~1 KB records held ~3,900 records, short of
# a 5000-record batch; 2 KiB per batched record lets one poll fill the batch.
consumer.max.partition.fetch.bytes=$fetch_bytes
PROPS
  [[ -z "${CONNECT_WORKER_PROPS:-}" ]] || printf '# CONNECT_WORKER_PROPS\n%s\n' "$CONNECT_WORKER_PROPS" >>"$worker"

  cat >"$connector" <<PROPS
# Debezium JDBC sink connector, written by bench/connect/connect.sh.
name=$(prop "$name")
connector.class=io.debezium.connector.jdbc.JdbcSinkConnector
# Debezium JDBC docs (multiple tasks): one task per tasks.max; a topic's partitions are shared out
# among them.
tasks.max=$tasks
topics=$(prop "$topic")
connection.url=$(prop "$jdbc_url")
connection.username=$(prop "$db_user")
connection.password=$(prop "$db_password")
# Debezium JDBC docs (idempotent writes): upsert = INSERT ... ON CONFLICT (pk) DO UPDATE on PostgreSQL.
insert.mode=upsert
delete.enabled=false
primary.key.mode=record_value
primary.key.fields=$(prop "$pk")
# The table exists already; never CREATE or ALTER it.
schema.evolution=none
# Debezium 3 calls this collection.name.format (table.name.format was its old name).
collection.name.format=$(prop "$table")
# Debezium JDBC docs (use.reduction.buffer): events for the same primary key within a batch are
# reduced to one change carrying the latest row state, which cuts the SQL load on the database; with
# PostgreSQL the docs also ask for reWriteBatchedInserts=true on the JDBC URL (see connection.url).
use.reduction.buffer=true
# Debezium JDBC docs (batch.size, default 500): records written to the table per flush; kept equal to
# the worker's consumer.max.poll.records so a poll is one flush.
batch.size=$batch
# Debezium JDBC 3.5 (dialect.postgres.unnest.insert.enabled, default false; described in the
# connector's own config definition): one INSERT ... SELECT * FROM UNNEST(?::type[], ...)
# ON CONFLICT ... per batch instead of a JDBC batch (which reWriteBatchedInserts turns into
# multi-row INSERTs); the description claims 5-10x for high-throughput loads. Measured on a 2-core
# machine, 200k records: no difference beyond the noise between the two (CONNECT_PG_UNNEST=false).
dialect.postgres.unnest.insert.enabled=$unnest
# Debezium JDBC docs (hibernate.* passthrough): name the driver, so Hibernate does not warn (HHH10001006).
hibernate.connection.driver_class=org.postgresql.Driver
PROPS
  [[ -z "${CONNECT_CONNECTOR_PROPS:-}" ]] || printf '# CONNECT_CONNECTOR_PROPS\n%s\n' "$CONNECT_CONNECTOR_PROPS" >>"$connector"

  log "worker $worker, connector $connector"
  log "topic $topic -> table $table on ${jdbc_url%%\?*} (group connect-$name, batch $batch, tasks $tasks, REST 127.0.0.1:$rest_port)"
  # Kafka's own launch flags (kafka-run-class.sh KAFKA_JVM_PERFORMANCE_OPTS) and the heap.
  # shellcheck disable=SC2086
  exec java $heap -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=$here/log4j2.properties" \
    ${CONNECT_JVM_OPTS:-} \
    -cp "$libs/*" org.apache.kafka.connect.cli.ConnectStandalone "$worker" "$connector"
}

case "${1:-}" in
  fetch) fetch ;;
  run) run ;;
  *) echo "usage: $0 fetch|run   (see the comment at the top of $0)" >&2; exit 2 ;;
esac
