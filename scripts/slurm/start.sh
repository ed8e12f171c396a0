#!/usr/bin/env bash
# Starts a single-node Slurm (munged, slurmctld, slurmd) for CI and local tests, as root, without
# systemd or cgroups, and waits until the node is idle (about a second). Idempotent: when the
# cluster already answers, it only says so.
#
#   SLURM_DIR   where the config, state, spool, pid and log files go (default /tmp/hubmake-slurm)
#
# Client commands (sbatch, squeue, ...) find the config through /etc/slurm/slurm.conf, which this
# script links to $SLURM_DIR/slurm.conf unless a real config already lives there (then export
# SLURM_CONF=$SLURM_DIR/slurm.conf yourself). Stop with scripts/slurm/stop.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
D="${SLURM_DIR:-/tmp/hubmake-slurm}"
conf="$D/slurm.conf"

for c in munged slurmctld slurmd sinfo; do
  if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$c" ]; then
    echo "scripts/slurm/start.sh: '$c' not found; install it: apt-get update && apt-get install -y slurmctld slurmd slurm-client munge" >&2
    exit 1
  fi
done
export PATH="$PATH:/usr/sbin"

node_state() { SLURM_CONF="$conf" timeout 5 sinfo -h -o %T 2>/dev/null | head -1 || true; }

if [ -f "$conf" ] && [ -f "$D/slurmctld.launch.pid" ] && kill -0 "$(cat "$D/slurmctld.launch.pid")" 2>/dev/null; then
  # Daemons started by an older version of this script from a directory since deleted (a CI
  # clone) hand that directory to every job step, which then prints "Unable to get current
  # working directory" into the job's output: start them again, from /.
  stale=""
  for f in slurmctld slurmd; do
    [ -f "$D/$f.launch.pid" ] && case "$(readlink "/proc/$(cat "$D/$f.launch.pid")/cwd" 2>/dev/null)" in *"(deleted)") stale=1 ;; esac
  done
  if [ -n "$stale" ]; then
    echo "slurm: restarting daemons whose working directory was deleted"
    "$here/stop.sh" >/dev/null
    sleep 0.5
  else
    s="$(node_state)"
    case "$s" in idle|mixed|allocated|completing)
      echo "slurm: already running (node $s, config $conf)"; exit 0 ;;
    esac
  fi
fi

mkdir -p "$D/state" "$D/spool"
host="$(hostname -s)"
cpus="${HUBMAKE_SLURM_NODE_CPUS:-$(nproc)}"
mem="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)"
sed -e "s|@HOST@|$host|g" -e "s|@DIR@|$D|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem|g" "$here/slurm.conf.in" > "$conf"

# Let client commands find the config without SLURM_CONF, unless someone else's config is there.
if [ ! -e /etc/slurm/slurm.conf ] || [ "$(readlink /etc/slurm/slurm.conf || true)" = "$conf" ]; then
  mkdir -p /etc/slurm && ln -sfn "$conf" /etc/slurm/slurm.conf
elif [ "$(readlink -f /etc/slurm/slurm.conf)" != "$conf" ]; then
  echo "slurm: /etc/slurm/slurm.conf is not ours; export SLURM_CONF=$conf for client commands" >&2
fi
export SLURM_CONF="$conf"

# munged: the package's postinst cannot start it without systemd, nor create its run directory.
if [ ! -S /run/munge/munge.socket.2 ] || ! munge -n >/dev/null 2>&1; then
  install -d -o munge -g munge -m 755 /run/munge
  (cd / || exit 1; setsid runuser -u munge -- munged -F > "$D/munged.out" 2>&1 < /dev/null & echo $! > "$D/munged.launcher.pid")
  for _ in $(seq 100); do [ -S /run/munge/munge.socket.2 ] && break; sleep 0.05; done
fi

# From /: a daemon keeps its working directory, and hands it to every job step; the directory
# this script runs from (a CI clone) may be deleted while they live.
(cd / || exit 1; setsid slurmctld -D -f "$conf" > "$D/slurmctld.out" 2>&1 < /dev/null & echo $! > "$D/slurmctld.launch.pid")
(cd / || exit 1; setsid slurmd -D -f "$conf" > "$D/slurmd.out" 2>&1 < /dev/null & echo $! > "$D/slurmd.launch.pid")

t0=$(date +%s%N)
for _ in $(seq 300); do
  s="$(node_state)"
  if [ "$s" = idle ]; then
    echo "slurm: node $host idle after $(( ($(date +%s%N) - t0) / 1000000 )) ms (config $conf)"
    exit 0
  fi
  sleep 0.1
done
echo "scripts/slurm/start.sh: the node did not become idle within 30 s (state: '${s:-none}'). Logs:" >&2
tail -n 20 "$D/slurmctld.log" "$D/slurmd.log" "$D/slurmctld.out" "$D/slurmd.out" >&2 2>/dev/null || true
exit 1
