#!/usr/bin/env bash
# A single-node SLURM cluster on localhost, for the system tests and for trying the slurm
# profiles by hand. Debian, as root; no systemd, so the daemons are started here and stopped by
# the PIDs they wrote. Everything (config, munge key and socket, spool, logs, the job-completion
# log) lives under $REPRISE_SLURM_DIR; the one thing outside it is a symlink
# /etc/slurm/slurm.conf -> $DIR/slurm.conf, because the plugin's job step clears SLURM_CONF
# before its `srun`, which then reads the standard path. A machine that has its own
# /etc/slurm/slurm.conf is refused, never overwritten.
#
#   bash tests/slurm/cluster.sh install   apt-get the Debian packages (skipped when present)
#   bash tests/slurm/cluster.sh start     write the config, start munged/slurmctld/slurmd, wait
#   bash tests/slurm/cluster.sh stop      cancel leftover jobs, stop the three daemons by PID
#   eval "$(bash tests/slurm/cluster.sh env)"   point sbatch/squeue/snakemake at this cluster
#
# The node has one GPU "backed" by /dev/null: GPU requests are scheduled and SLURM sets
# CUDA_VISIBLE_DEVICES, with no real GPU. Accounting is off (no slurmdbd); the job-completion
# log ($DIR/log/jobcomp.txt) and squeue (MinJobAge=300) are the record of what ran.
set -euo pipefail

DIR=${REPRISE_SLURM_DIR:-/tmp/reprise-slurm}
PARTITION=${REPRISE_SLURM_TEST_PARTITION:-reprise}
NODE=reprise-node
CTLD_PORT=${REPRISE_SLURMCTLD_PORT:-6817}
SLURMD_PORT=${REPRISE_SLURMD_PORT:-6818}
PACKAGES=(munge slurmctld slurmd slurm-client)
DAEMONS=(slurmd slurmctld munged) # stop order
export SLURM_CONF=$DIR/slurm.conf
SYSTEM_CONF=/etc/slurm/slurm.conf

say() { printf 'slurm: %s\n' "$*" >&2; }

install() {
  local c missing=()
  for c in munged slurmctld slurmd sbatch; do command -v "$c" >/dev/null || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || { say "installing ${PACKAGES[*]} needs root"; exit 1; }
  say "installing ${PACKAGES[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

write_config() {
  local hw cpus mem
  hw=$(slurmd -C | head -n 1)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  cat >"$DIR/slurm.conf" <<EOF
ClusterName=reprise
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/run/munge.socket
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$DIR/spool/d
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=300
KillWait=5
ReturnToService=2
GresTypes=gpu
NodeName=$NODE NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE MaxTime=INFINITE State=UP
EOF
  echo "NodeName=$NODE Name=gpu File=/dev/null" >"$DIR/gres.conf"
}

running() { [ -f "$DIR/run/$1.pid" ] && kill -0 "$(cat "$DIR/run/$1.pid")" 2>/dev/null; }

# NAME CMD...: run a daemon in the foreground of a background job, so its PID is known at once.
daemon() {
  local name=$1
  shift
  "$@" >"$DIR/log/$name.out" 2>&1 &
  echo $! >"$DIR/run/$name.pid"
}

start() {
  install
  if running slurmctld; then
    say "already running under $DIR"
    return 0
  fi
  if [ -e "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" != "$SLURM_CONF" ]; then
    say "$SYSTEM_CONF exists and is not this test cluster's: refusing to replace it"
    exit 1
  fi
  rm -rf "$DIR"/{spool,log,run} # only what this script made: $DIR may be any directory
  mkdir -p "$DIR"/{spool/ctld,spool/d,log,run} "$(dirname "$SYSTEM_CONF")"
  chmod 755 "$DIR" "$DIR/run"
  head -c 1024 /dev/urandom >"$DIR/munge.key"
  chmod 400 "$DIR/munge.key"
  write_config
  ln -sfn "$SLURM_CONF" "$SYSTEM_CONF"
  daemon munged munged --foreground --force --key-file="$DIR/munge.key" \
    --socket="$DIR/run/munge.socket" --log-file="$DIR/log/munged.log" \
    --pid-file="$DIR/run/munged.pid" --seed-file="$DIR/run/munged.seed"
  for _ in $(seq 50); do [ -S "$DIR/run/munge.socket" ] && break; sleep 0.1; done
  daemon slurmctld slurmctld -D -i
  daemon slurmd slurmd -D -N "$NODE"
  for _ in $(seq 60); do
    running munged && running slurmctld && running slurmd || break
    if [ "$(timeout 5 sinfo -h -p "$PARTITION" -o %T 2>/dev/null)" = idle ]; then
      say "up: partition $PARTITION, node $NODE ($(sinfo -h -o '%c CPUs, %G'))"
      return 0
    fi
    sleep 1
  done
  say "the node did not come up; the last lines of the logs in $DIR/log:"
  for f in "$DIR"/log/*; do say "--- $f"; tail -n 15 "$f" >&2; done
  stop
  exit 1
}

stop() {
  if running slurmctld; then
    scancel --full --partition="$PARTITION" 2>/dev/null || true
    for _ in $(seq 15); do
      [ -z "$(timeout 5 squeue -h -t running,completing 2>/dev/null)" ] && break
      sleep 1
    done
  fi
  for d in "${DAEMONS[@]}"; do
    local f=$DIR/run/$d.pid pid
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  [ "$(readlink "$SYSTEM_CONF")" = "$SLURM_CONF" ] && rm -f "$SYSTEM_CONF"
  say "stopped"
}

case ${1:-} in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
