#!/usr/bin/env bash
# Stops what scripts/slurm/start.sh started, by the process ids it wrote down.
set -uo pipefail
D="${SLURM_DIR:-/tmp/hubmake-slurm}"
for f in slurmd slurmctld; do
  p="$D/$f.launch.pid"
  [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null
  rm -f "$p"
done
# munged runs as a child of runuser, which exits with it.
if [ -f "$D/munged.launcher.pid" ]; then
  for c in $(pgrep -P "$(cat "$D/munged.launcher.pid")" munged); do kill "$c" 2>/dev/null; done
  rm -f "$D/munged.launcher.pid"
fi
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$D/slurm.conf" ]; then rm -f /etc/slurm/slurm.conf; fi
echo "slurm: stopped"
