#!/bin/bash
# Alternates two checkouts of hubmake on the same state: the per-target no-op of the scale
# graph (HUBMAKE_NOOP_SHORTCUT=off, the planning figure of bench/scale.ts), this checkout and
# another one run in turn, N times each. This VM's speed moves 15% within minutes: only runs
# interleaved like this compare two versions of the engine.
#   bench/alternate.sh <other-checkout> [runs=4] [graph=/tmp/hubmake-bench/scale-100000/hubmake]
# The graph is the one `npm run bench -- --only scale` leaves (it must have been built); the
# other checkout needs its own `npm install` (or node_modules linked) and `npm run bundle`.
set -euo pipefail
other=$(cd "${1:?usage: bench/alternate.sh <other-checkout> [runs] [graph]}" && pwd)
runs=${2:-4}
graph=${3:-/tmp/hubmake-bench/scale-100000/hubmake}
here=$(cd "$(dirname "$0")/.." && pwd)
for i in $(seq "$runs"); do
  for w in "$other" "$here"; do
    ms=$(cd "$w" && HUBMAKE_NOOP_SHORTCUT=off HUBMAKE_TIMING=1 node --import tsx build.ts -C "$graph" -f targets/actions.ts -j2 2>&1 >/dev/null | awk '/^hubmake-engine-ms:/ {print $2}')
    echo "$w $ms"
  done
done | awk '{ s[$1] += $2; n[$1]++; v[$1] = v[$1] " " $2 } END { for (k in s) printf "%s: mean %.0f ms:%s\n", k, s[k] / n[k], v[k] }'
