#!/usr/bin/env bash
# Stops what scripts/slurm/start.sh started, by the process ids it wrote down.
set -uo pipefail
D="${SLURM_DIR:-/tmp/hubmake-slurm}"
pids=""
for f in slurmd slurmctld; do
  p="$D/$f.launch.pid"
  [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null && pids="$pids $(cat "$p")"
  rm -f "$p"
done
# Wait (up to 10 s) until they are gone: a start right after must not find the old ones still
# holding their ports.
for _ in $(seq 100); do
  alive=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.1
done
# munged runs as a child of runuser, which exits with it.
if [ -f "$D/munged.launcher.pid" ]; then
  for c in $(pgrep -P "$(cat "$D/munged.launcher.pid")" munged); do kill "$c" 2>/dev/null; done
  rm -f "$D/munged.launcher.pid"
fi
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$D/slurm.conf" ]; then rm -f /etc/slurm/slurm.conf; fi
echo "slurm: stopped"
