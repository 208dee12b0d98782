#!/usr/bin/env bash
# A one-node Slurm cluster on 127.0.0.1 for tests: munge, slurmctld and slurmd, no cgroups.
#
#   scripts/slurm-local.sh install   apt-get the Debian packages (root; once per machine)
#   scripts/slurm-local.sh up        write a config, start the daemons, wait for the node
#   scripts/slurm-local.sh down      stop the daemons this script started, by their PIDs
#   scripts/slurm-local.sh env       print `export SLURM_CONF=...` for sbatch and squeue
#
# Everything lives under $DCGAN_SLURM_DIR (default /tmp/dcgan-slurm). Needs root: slurmd runs
# jobs as their user, and munged must run as the `munge` user.
set -euo pipefail

DIR=${DCGAN_SLURM_DIR:-/tmp/dcgan-slurm}
CONF=$DIR/slurm.conf
NODE=localhost
# libmunge in sbatch, squeue and the daemons looks for the socket here, whatever we say.
MUNGE_SOCKET=/run/munge/munge.socket.2

has() { command -v "$1" >/dev/null 2>&1; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
need_root() { [ "$(id -u)" -eq 0 ] || { echo "slurm-local: $1 needs root" >&2; exit 1; }; }

# Not named `install`: that would shadow install(1), which start_munge uses.
install_packages() {
  need_root install
  if has slurmctld && has slurmd && has sbatch && has munged; then return 0; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null
}

write_config() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF" <<CONF
ClusterName=dcgan-test
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# Containers and sandboxes often have no usable cgroups: track processes by their parents.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Tests wait on the scheduler: look at the queue every second, give up on nodes quickly.
SchedulerParameters=sched_interval=1
SlurmdTimeout=30
KillWait=10
MinJobAge=300
ReturnToService=2
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}

start_munge() {
  if [ -S "$MUNGE_SOCKET" ] && munge -n </dev/null | unmunge >/dev/null 2>&1; then
    return 0   # a working munged is already there; not ours to stop
  fi
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
  setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || true
  for _ in $(seq 50); do [ -S "$MUNGE_SOCKET" ] && break; sleep 0.1; done
  munge -n </dev/null | unmunge >/dev/null
}

up() {
  need_root up
  for tool in slurmctld slurmd sbatch munged; do
    has "$tool" || { echo "slurm-local: $tool is not installed (run: $0 install)" >&2; exit 3; }
  done
  write_config
  start_munge
  export SLURM_CONF=$CONF
  # -D keeps each daemon in the foreground so that $! is its PID; -c forgets old jobs.
  running "$DIR/slurmctld.pid" || {
    slurmctld -D -c -f "$CONF" >>"$DIR/log/slurmctld.out" 2>&1 &
    echo $! >"$DIR/slurmctld.pid"
  }
  running "$DIR/slurmd.pid" || {
    slurmd -D -N "$NODE" -f "$CONF" >>"$DIR/log/slurmd.out" 2>&1 &
    echo $! >"$DIR/slurmd.pid"
  }
  for _ in $(seq 120); do
    case "$(sinfo --noheader --Node --format=%t 2>/dev/null || true)" in
      idle*|mix*|alloc*) echo "slurm-local: up; export SLURM_CONF=$CONF"; return 0 ;;
      drain*|down*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  echo "slurm-local: the node did not come up; last log lines:" >&2
  tail -n 20 "$DIR"/log/*.log >&2 || true
  exit 1
}

down() {
  local pids=() pid
  for name in slurmd slurmctld munged; do
    if running "$DIR/$name.pid"; then pids+=("$(cat "$DIR/$name.pid")"); fi
    rm -f "$DIR/$name.pid"
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  kill "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  kill -9 "${pids[@]}" 2>/dev/null || true
}

case "${1:-}" in
  install) install_packages ;;
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 install|up|down|env" >&2; exit 2 ;;
esac
