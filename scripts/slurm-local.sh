#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for isdet's Slurm test and for
# trying `cargo xtask sweep --slurm … --submit` without a cluster.
#
#   scripts/slurm-local.sh start   # install (if missing), configure, start
#   scripts/slurm-local.sh stop    # stop the daemons, remove their state
#   scripts/slurm-local.sh env     # print the SLURM_CONF line to export
#
# `start` installs Slurm and munge from the distribution's packages when
# they are missing (Debian/Ubuntu, as root), writes a slurm.conf for this
# machine (one node, all its CPUs, one partition `debug`) under
# $ISDET_SLURM_DIR (default /tmp/isdet-slurm), and starts munged,
# slurmctld and slurmd on localhost. Clients need SLURM_CONF pointing at
# that file (`eval "$(scripts/slurm-local.sh env)"`). Process tracking is
# `proctrack/linuxproc` and task binding is off, so it runs in containers
# without cgroups.
set -euo pipefail

STATE="${ISDET_SLURM_DIR:-/tmp/isdet-slurm}"
CONF="$STATE/slurm.conf"
HOST="$(hostname -s)"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "slurm-local.sh: $1 needs root" >&2
        exit 1
    fi
}

install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return
    fi
    need_root "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q slurm-wlm munge >/dev/null
}

write_conf() {
    mkdir -p "$STATE/ctld" "$STATE/d"
    cat >"$CONF" <<EOF
ClusterName=isdet
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
KillWait=5
MinJobAge=60
NodeName=$HOST CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if [ -S /run/munge/munge.socket.2 ] && munge -n >/dev/null 2>&1; then
        return
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if [ ! -f /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null ||
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    su -s /bin/sh munge -c /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "slurm-local.sh: munged did not start" >&2
    exit 1
}

start() {
    need_root "starting the daemons"
    install
    write_conf
    start_munge
    slurmctld -f "$CONF"
    slurmd -f "$CONF"
    export SLURM_CONF="$CONF"
    for _ in $(seq 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^idle'; then
            echo "slurm-local.sh: one-node cluster up on $HOST ($(nproc) CPUs); export SLURM_CONF=$CONF"
            return
        fi
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
        sleep 0.2
    done
    echo "slurm-local.sh: the node never became idle; logs in $STATE" >&2
    sinfo >&2 || true
    exit 1
}

stop() {
    for daemon in slurmd slurmctld; do
        if [ -f "$STATE/$daemon.pid" ]; then
            kill "$(cat "$STATE/$daemon.pid")" 2>/dev/null || true
        fi
    done
    for _ in $(seq 50); do
        pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
        sleep 0.1
    done
    pkill -x munged 2>/dev/null || true
    rm -rf "$STATE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
env) echo "export SLURM_CONF=$CONF" ;;
*)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
