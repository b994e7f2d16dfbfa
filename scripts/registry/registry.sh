#!/usr/bin/env bash
# A schema registry on 127.0.0.1 (Apicurio Registry 3.0.9, Confluent-compatible API at /apis/ccompat/v7), for the
# tests and the demo of the avro, protobuf and json-schema formats on machines without Docker.
#
#   scripts/registry/registry.sh fetch   download the registry from Maven Central (cached in .local/registry/app)
#   scripts/registry/registry.sh start   fetch if needed, start with fresh storage, wait until it answers
#   scripts/registry/registry.sh start --keep-data
#                                        start again on the storage of the last start (its schemas and ids kept)
#   scripts/registry/registry.sh stop    stop it (SIGTERM), wait for the process to end
#   scripts/registry/registry.sh status  exit 0 if our registry is running and answering
#
# Port: SLUICE_REGISTRY_PORT (default 8081). State (storage, log, pid): SLUICE_REGISTRY_HOME (default
# .local/registry), so that a test can run one of its own beside the shared one; the application is shared.
# Storage is an H2 database in a file, so that a registry stopped and started again keeps its schemas and ids.
# Apicurio 3.0.9 is the last 3.x that runs on Java 17.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
home="${SLUICE_REGISTRY_HOME:-$root/.local/registry}"
app="$root/.local/registry/app"
port="${SLUICE_REGISTRY_PORT:-8081}"
pidfile="$home/registry.pid"
version=3.0.9
ready_timeout_s="${SLUICE_REGISTRY_READY_TIMEOUT_S:-90}"

log() { printf 'registry.sh: %s\n' "$*" >&2; }
source "$root/scripts/lib/daemon.sh"

answers() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/apis/ccompat/v7/subjects"; }

our_pid() { daemon_pid "$pidfile"; }

fetch() {
  if [[ -f "$app/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { log "mvn is not installed: it is needed to fetch the schema registry"; exit 1; }
  command -v java >/dev/null || { log "java is not installed: the schema registry needs Java 17 or newer"; exit 1; }
  log "fetching Apicurio Registry $version from Maven Central into $app"
  mvn -q -B dependency:get -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" -Dtransitive=false >&2
  local archive="${MAVEN_REPOSITORY:-$HOME/.m2/repository}/io/apicurio/apicurio-registry-app/$version/apicurio-registry-app-$version-all.tar.gz"
  rm -rf "$app"
  mkdir -p "$app"
  tar -xzf "$archive" -C "$app"
  touch "$app/.complete"
}

start() {
  local keep_data=false
  [[ "${1:-}" == "--keep-data" ]] && keep_data=true
  if pid=$(our_pid) && answers; then
    log "already running (pid $pid) on 127.0.0.1:$port"
    return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "something else already listens on 127.0.0.1:$port; set SLUICE_REGISTRY_PORT to pick another port"
    exit 1
  fi
  fetch
  mkdir -p "$home"
  [[ "$keep_data" == true ]] || rm -rf "$home/storage"
  # setsid: the registry outlives this script and is not hit by a Ctrl-C meant for a test run.
  setsid java -Xms64m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
    -Dapicurio.datasource.url="jdbc:h2:file:$home/storage/registry" \
    -jar "$app/apicurio-registry-app-$version-runner.jar" >"$home/registry.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local deadline=$((SECONDS + ready_timeout_s))
  until answers; do
    if ! our_pid >/dev/null; then
      log "the registry exited during start-up; last lines of its log:"
      tail -n 30 "$home/registry.log" >&2 || true
      exit 1
    fi
    if ((SECONDS > deadline)); then
      log "the registry did not answer on 127.0.0.1:$port within ${ready_timeout_s}s"
      stop
      exit 1
    fi
    sleep 0.2
  done
  log "running (pid $(cat "$pidfile")) at http://127.0.0.1:$port/apis/ccompat/v7"
}

stop() { daemon_stop "$pidfile" 30; }

status() {
  local pid
  if pid=$(our_pid) && answers; then
    echo "running (pid $pid) at http://127.0.0.1:$port/apis/ccompat/v7"
  else
    echo "not running"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start "${2:-}" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 fetch|start [--keep-data]|stop|status" >&2; exit 2 ;;
esac
