# Sourced by scripts/kafka/kafka.sh and scripts/registry/registry.sh: a background process of the project's own,
# found by its pid file. The sourcing script defines `log`.

# daemon_pid PIDFILE: prints the pid and succeeds when that process is alive.
daemon_pid() {
  [[ -f "$1" ]] || return 1
  local pid
  pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# daemon_stop PIDFILE GRACE_S: SIGTERM, then SIGKILL if it has not ended within GRACE_S seconds; the pid file goes.
daemon_stop() {
  local pidfile=$1 grace_s=$2 pid
  if ! pid=$(daemon_pid "$pidfile"); then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  local deadline=$((SECONDS + grace_s))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      log "not stopped within ${grace_s}s; killing pid $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "stopped"
}
