#!/usr/bin/env bash
# Stop the SLURM cluster that slurm-up.sh started: cancel its jobs, then stop slurmd, slurmctld and
# munged by the PID files in $GRIT_SLURM_DIR (default /tmp/grit-slurm), checking that each PID is
# still the expected program. Nothing else is touched. Idempotent: without live PID files it
# says so and exits 0. The state directory is kept (pass --purge to delete it).
set -euo pipefail

DIR=${GRIT_SLURM_DIR:-/tmp/grit-slurm}
say() { echo "slurm-down: $*" >&2; }

pid_of() { # pid_of PIDFILE PROGRAM -> the PID when it names a live PROGRAM
  [[ -s "$1" ]] || return 1
  local pid; pid=$(tr -dc '0-9' < "$1")
  [[ -n "$pid" && -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == "$2" ]] && echo "$pid"
}

stop() { # stop PIDFILE PROGRAM
  local pid
  if pid=$(pid_of "$1" "$2"); then
    kill "$pid"
    for _ in $(seq 50); do [[ -e "/proc/$pid" ]] || break; sleep 0.1; done
    if [[ -e "/proc/$pid" ]]; then say "$2 ($pid) did not stop on TERM; sending KILL"; kill -9 "$pid" || true; fi
    say "stopped $2 ($pid)"
    stopped=$((stopped + 1))
  fi
  rm -f "$1"
}

stopped=0
if [[ -d "$DIR/run" ]]; then
  if pid_of "$DIR/run/slurmctld.pid" slurmctld >/dev/null && [[ -f "$DIR/etc/slurm.conf" ]]; then
    SLURM_CONF="$DIR/etc/slurm.conf" scancel --partition=debug 2>/dev/null || true  # this cluster's jobs only
    for _ in $(seq 30); do  # let their steps end before slurmd goes
      [[ -z "$(SLURM_CONF="$DIR/etc/slurm.conf" squeue -h -t R,CG 2>/dev/null)" ]] && break; sleep 0.5
    done
  fi
  stop "$DIR/run/slurmd.pid" slurmd
  stop "$DIR/run/slurmctld.pid" slurmctld
  stop "$DIR/run/munged.pid" munged
  rm -f "$DIR/munge/munged.pid"
  (( stopped )) || say "nothing was running (no live PID files in $DIR/run)"
else
  say "nothing to stop ($DIR/run does not exist)"
fi
if [[ "${1:-}" == "--purge" ]]; then rm -rf "$DIR"; say "removed $DIR"; fi
exit 0
