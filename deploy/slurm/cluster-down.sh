#!/usr/bin/env bash
# Stop the local cluster that cluster-up.sh started: cancel its jobs (so no
# job processes outlive slurmd), then stop slurmd, slurmctld and, if
# cluster-up started it, munged -- by the pid files in STATE_DIR. Packages,
# the munge key and STATE_DIR (config, logs) are left in place.
#
#   deploy/slurm/cluster-down.sh [STATE_DIR]
set -euo pipefail

STATE_DIR="${1:-/tmp/fold-ml-slurm}"
export SLURM_CONF="$STATE_DIR/slurm.conf"

log() { echo "cluster-down: $*" >&2; }
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop() {  # stop NAME: SIGTERM the recorded pid, SIGKILL after 15 s
  local pidfile="$STATE_DIR/$1.pid" pid
  [[ -s "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 (pid $pid) ignored SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $1 (pid $pid)"
  fi
  rm -f "$pidfile"
}

if alive "$STATE_DIR/slurmctld.pid" && alive "$STATE_DIR/slurmd.pid"; then
  mapfile -t jobs < <(squeue -h -o '%A' 2>/dev/null || true)
  if (( ${#jobs[@]} )); then
    log "cancelling ${#jobs[@]} job(s)"
    scancel "${jobs[@]}" 2>/dev/null || true
    # Wait (KillWait is 10 s) until slurmd reports no job processes left.
    for _ in $(seq 30); do
      [[ -z "$(scontrol listpids 2>/dev/null | tail -n +2)" ]] && break
      sleep 1
    done
  fi
fi

stop slurmd
stop slurmctld
stop munged
