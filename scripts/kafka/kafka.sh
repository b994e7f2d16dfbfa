#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft) on 127.0.0.1, for the demo and the tests on machines without Docker.
#
#   scripts/kafka/kafka.sh fetch    download the broker jars from Maven Central (cached in .local/kafka/libs)
#   scripts/kafka/kafka.sh start    fetch if needed, format a fresh data dir, start, wait until it is ready
#   scripts/kafka/kafka.sh start --keep-data
#                                   start again on the data of the last start (topics, offsets and groups kept)
#   scripts/kafka/kafka.sh stop     controlled shutdown (SIGTERM), waits for the process to end
#   scripts/kafka/kafka.sh status   exit 0 if our broker is running and accepting connections
#
# Port: SLUICE_KAFKA_PORT (default 9092); the controller listens on the next port.
# Extra broker properties: SLUICE_KAFKA_EXTRA_CONFIG (a file appended to server.properties); SCRAM users made at
# format time: SLUICE_KAFKA_SCRAM_USERS.
# State (data, logs, pid): SLUICE_KAFKA_HOME (default .local/kafka), so that a second broker can run beside the
# first; the jars are shared.
# If KAFKA_BROKERS is set, nothing is started: that stack is used as it is.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
home="${SLUICE_KAFKA_HOME:-$root/.local/kafka}"
libs="$root/.local/kafka/libs"
port="${SLUICE_KAFKA_PORT:-9092}"
cport=$((port + 1))
pidfile="$home/broker.pid"
ready_timeout_s="${SLUICE_KAFKA_READY_TIMEOUT_S:-90}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
source "$root/scripts/lib/daemon.sh"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

our_pid() { daemon_pid "$pidfile"; }

fetch() {
  if [[ -f "$libs/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn is not installed: it is needed to fetch the Kafka broker jars"; exit 1; }
  command -v java >/dev/null || { log "java is not installed: Kafka needs Java 17 or newer"; exit 1; }
  log "fetching the Kafka broker jars from Maven Central into $libs"
  rm -rf "$libs"
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs" >&2
  touch "$libs/.complete"
}

start() {
  local keep_data=false
  [[ "${1:-}" == "--keep-data" ]] && keep_data=true
  if pid=$(our_pid) && port_open "$port"; then
    log "already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if port_open "$port"; then
    log "something else already listens on 127.0.0.1:$port; set KAFKA_BROKERS to use it, or SLUICE_KAFKA_PORT to pick another port"
    exit 1
  fi
  fetch
  local data="$home/data" conf="$home/server.properties"
  if [[ "$keep_data" == true && -f "$data/meta.properties" ]]; then
    log "starting again on the data in $data"
  else
    rm -rf "$data"
    mkdir -p "$data"
  fi
  cat >"$conf" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.cleaner.dedupe.buffer.size=2097152
# The cleaner looks for work every second instead of every 15 s: compacted topics in tests are cleaned promptly.
log.cleaner.backoff.ms=1000
PROPS
  # More properties (a test's TLS and SASL listeners): later keys override the ones above.
  if [[ -n "${SLUICE_KAFKA_EXTRA_CONFIG:-}" ]]; then
    cat "$SLUICE_KAFKA_EXTRA_CONFIG" >>"$conf"
  fi
  local jvm=(java -Xms256m -Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$home"
    -cp "$libs/*")
  if [[ ! -f "$data/meta.properties" ]]; then
    # SLUICE_KAFKA_SCRAM_USERS: SASL/SCRAM credentials made at format time, as Kafka's own tool takes them, separated by
    # spaces, e.g. 'SCRAM-SHA-256=[name=alice,password=secret]'.
    local scram=() users=()
    read -r -a users <<<"${SLUICE_KAFKA_SCRAM_USERS:-}"
    for user in "${users[@]}"; do scram+=(--add-scram "$user"); done
    "${jvm[@]}" kafka.tools.StorageTool format --cluster-id=sluice-local-kafka1 -c "$conf" "${scram[@]}" >"$home/format.log" 2>&1 \
      || { log "formatting the data directory failed:"; cat "$home/format.log" >&2; exit 1; }
  fi
  # setsid: the broker outlives this script and is not hit by a Ctrl-C meant for a test run.
  setsid "${jvm[@]}" kafka.Kafka "$conf" >"$home/stdout.log" 2>&1 < /dev/null &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + ready_timeout_s))
  until port_open "$port"; do
    if ! our_pid >/dev/null; then
      log "the broker exited during start-up; last lines of its logs:"
      tail -n 30 "$home/stdout.log" "$home/broker.log" >&2 2>/dev/null || true
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "the broker did not accept connections on 127.0.0.1:$port within ${ready_timeout_s}s"
      stop
      exit 1
    fi
    sleep 0.2
  done
  log "running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
}

stop() { daemon_stop "$pidfile" 60; }

# One of Kafka's own tools on the broker's jars, e.g. `tool kafka.admin.ConfigCommand --bootstrap-server … --alter …`.
tool() {
  fetch
  java -Xmx256m "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$home" -cp "$libs/*" "$@"
}

status() {
  local pid
  if pid=$(our_pid) && port_open "$port"; then
    echo "running (pid $pid) on 127.0.0.1:$port"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start)
    if [[ -n "${KAFKA_BROKERS:-}" ]]; then log "KAFKA_BROKERS is set ($KAFKA_BROKERS): using that broker, starting none"; exit 0; fi
    start "${2:-}" ;;
  stop) stop ;;
  status) status ;;
  tool) shift; tool "$@" ;;
  *) echo "usage: $0 fetch|start [--keep-data]|stop|status|tool <main class> [args]" >&2; exit 2 ;;
esac
