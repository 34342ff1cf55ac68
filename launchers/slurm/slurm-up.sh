#!/usr/bin/env bash
# Start a real single-node SLURM cluster on this machine (Debian's slurmctld, slurmd, slurm-client,
# munge; installed with apt-get when missing, which needs root). Everything it writes lives in
# $GRIT_SLURM_DIR (default /tmp/grit-slurm): slurm.conf, munge key and socket, state, spool, logs and
# the PID files that slurm-down.sh reads. Idempotent: a cluster already up is reused.
# Progress goes to stderr; the one line on stdout, printed last, is `export SLURM_CONF=<path>`, so
#     eval "$(make -s slurm-up | tail -n 1)"
# points sbatch/srun/squeue (and submitit) at this cluster. Stop it with launchers/slurm/slurm-down.sh.
set -euo pipefail

DIR=$(mkdir -p "${GRIT_SLURM_DIR:-/tmp/grit-slurm}" && cd "${GRIT_SLURM_DIR:-/tmp/grit-slurm}" && pwd)
CTLD_PORT=${GRIT_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${GRIT_SLURM_SLURMD_PORT:-6818}
CONF="$DIR/etc/slurm.conf"
say() { echo "slurm-up: $*" >&2; }
die() { say "$*"; exit 1; }

# A PID file names a live process of the expected program.
alive() { # alive PIDFILE PROGRAM
  [[ -s "$1" ]] || return 1
  local pid; pid=$(tr -dc '0-9' < "$1")
  [[ -n "$pid" && -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == "$2" ]]
}

# ------------------------------------------------------------------------------------ install
missing=()
for prog in slurmctld slurmd sbatch munged; do command -v "$prog" >/dev/null || missing+=("$prog"); done
if (( ${#missing[@]} )); then
  [[ $(id -u) -eq 0 ]] || die "${missing[*]} not installed and installing needs root: apt-get install slurmctld slurmd slurm-client munge"
  command -v apt-get >/dev/null || die "${missing[*]} not installed and apt-get is not available (Debian/Ubuntu only)"
  say "installing slurmctld slurmd slurm-client munge (apt-get)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge; } >&2 || die "apt-get install failed"
fi
[[ $(id -u) -eq 0 ]] || die "the daemons run as root (SlurmdUser=root); run as root"
id munge >/dev/null 2>&1 || die "user 'munge' does not exist (the munge package creates it)"

# ------------------------------------------------------------------------------------ reuse
export SLURM_CONF="$CONF"
if alive "$DIR/run/munged.pid" munged && alive "$DIR/run/slurmctld.pid" slurmctld \
   && alive "$DIR/run/slurmd.pid" slurmd && scontrol ping >/dev/null 2>&1; then
  say "already running (state in $DIR)"
  echo "export SLURM_CONF=$CONF"
  exit 0
fi

# ------------------------------------------------------------------------------------ config
mkdir -p "$DIR"/{etc,run,log,state,spool,munge}
HOST=$(hostname -s)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)  # leave 20% to the system
chown munge:munge "$DIR/munge" && chmod 755 "$DIR/munge"
runuser -u munge -- test -x "$DIR/munge" \
  || die "user munge cannot reach $DIR/munge (a parent directory is private): choose another GRIT_SLURM_DIR"
if [[ ! -s "$DIR/munge/munge.key" ]]; then
  dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
fi
chown munge:munge "$DIR/munge/munge.key" && chmod 400 "$DIR/munge/munge.key"

cat > "$CONF" <<CONF
# Written by launchers/slurm/slurm-up.sh: a single-node cluster on localhost for tests and demos.
ClusterName=grit-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=localhost NodeHostname=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

# ------------------------------------------------------------------------------------ start
if ! alive "$DIR/run/munged.pid" munged; then
  say "starting munged"
  runuser -u munge -- munged --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed" \
    || die "munged did not start: see $DIR/munge/munged.log"
  for _ in $(seq 50); do [[ -s "$DIR/munge/munged.pid" ]] && break; sleep 0.1; done
  cp "$DIR/munge/munged.pid" "$DIR/run/munged.pid"
fi
if ! alive "$DIR/run/slurmctld.pid" slurmctld; then
  say "starting slurmctld"
  slurmctld -i -f "$CONF" || die "slurmctld did not start: see $DIR/log/slurmctld.log"
fi
if ! alive "$DIR/run/slurmd.pid" slurmd; then
  say "starting slurmd"
  slurmd -N localhost -f "$CONF" || die "slurmd did not start: see $DIR/log/slurmd.log"
fi

# ------------------------------------------------------------------------------------ wait
for _ in $(seq 60); do
  state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
  [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]] && break
  sleep 0.5
done
[[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]] \
  || die "node not ready after 30 s (state '${state:-none}'): see $DIR/log/slurmctld.log and slurmd.log"
say "up: 1 node, $CPUS CPUs, ${MEM_MB} MB, partition debug (state in $DIR)"
echo "export SLURM_CONF=$CONF"
