#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing the Slurm executor: slurmctld and
# slurmd on localhost, started without systemd (see docs/cluster.md for the pitfalls).
#
#   scripts/slurm/local-cluster.sh install   # Debian packages (needs root and apt)
#   scripts/slurm/local-cluster.sh start     # writes $STATE/slurm.conf, starts the daemons
#   scripts/slurm/local-cluster.sh status
#   scripts/slurm/local-cluster.sh stop      # stops exactly the daemons it started
#
# STATE (default /tmp/palimpsest-slurm) holds the config, spool, logs and pid copies.
set -euo pipefail
STATE="${PALIMPSEST_SLURM_STATE:-/tmp/palimpsest-slurm}"
NODE="palimpsest-node"
CONF="$STATE/slurm.conf"

die() { echo "local-cluster: $*" >&2; exit 1; }

# A process is alive if it exists and is not a zombie (PID 1 here may reap late).
alive() {
  local pid="$1"
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
  local state
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != "Z" ]
}

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "installing Slurm needs root"
  apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client >/dev/null
}

write_config() {
  mkdir -p "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/log"
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
  cat > "$CONF" <<CONF
ClusterName=palimpsest
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
ReturnToService=2
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install_packages
  if [ -f "$STATE/ctld.pid.copy" ] && alive "$(cat "$STATE/ctld.pid.copy")"; then
    echo "already running (state in $STATE)"; return 0
  fi
  write_config
  export SLURM_CONF="$CONF"
  slurmctld -c -f "$CONF"
  for _ in $(seq 50); do [ -s "$STATE/slurmctld.pid" ] && break; sleep 0.1; done
  [ -s "$STATE/slurmctld.pid" ] || die "slurmctld did not start; see $STATE/log/slurmctld.log"
  cp "$STATE/slurmctld.pid" "$STATE/ctld.pid.copy"
  slurmd -f "$CONF" -N "$NODE"
  for _ in $(seq 50); do [ -s "$STATE/slurmd.pid" ] && break; sleep 0.1; done
  [ -s "$STATE/slurmd.pid" ] || die "slurmd did not start; see $STATE/log/slurmd.log"
  cp "$STATE/slurmd.pid" "$STATE/d.pid.copy"
  # Wait until the node accepts work.
  for _ in $(seq 100); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      echo "Slurm is up: export SLURM_CONF=$CONF"; return 0
    fi
    sleep 0.2
  done
  die "the node did not become idle; see $STATE/log/"
}

status() {
  export SLURM_CONF="$CONF"
  for d in ctld d; do
    local f="$STATE/$d.pid.copy"
    if [ -f "$f" ] && alive "$(cat "$f")"; then echo "slurm$d: running (pid $(cat "$f"))"; else echo "slurm$d: stopped"; fi
  done
  [ -f "$CONF" ] && sinfo 2>/dev/null || true
}

stop() {
  for d in d ctld; do
    local f="$STATE/$d.pid.copy"
    [ -f "$f" ] || continue
    local pid; pid=$(cat "$f")
    if alive "$pid"; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
  echo "Slurm stopped"
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  status) status ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|status|stop" >&2; exit 2 ;;
esac
