#!/bin/sh
# Draws the fail-over timeline PNG from the two TSVs of tests/e2e/failover_e2e.py.
# Usage: docs/plots/plot-failover.sh [OURS.tsv UPSTREAM.tsv OUT.png]
# Defaults: the recorded runs under docs/ and docs/img/failover-timeline.png.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ours=${1:-$here/../failover-timeline-2chassis.tsv}
up=${2:-$here/../failover-timeline-upstream-2chassis.tsv}
out=${3:-$here/../img/failover-timeline.png}
# event NAME FILE: the value of NAME=... on the "# events" line
event() { awk -F'\t' -v k="$1" '/^# events/ { for (i = 2; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' "$2"; }
# summary FILE: the "# queries ..." line without the "# "
summary() { sed -n 's/^# \(queries .*\)$/\1/p' "$1"; }
for f in "$ours" "$up"; do
  [ -n "$(event kill "$f")" ] || { echo "plot-failover: no '# events' line in $f" >&2; exit 1; }
done
gnuplot -e "ours='$ours'; up='$up'; out='$out'" \
  -e "k1=$(event kill "$ours"); r1=$(event restart "$ours"); d1=$(event ready "$ours")" \
  -e "k2=$(event kill "$up"); r2=$(event restart "$up"); d2=$(event ready "$up")" \
  -e "t1='With fail-over (node-cache + ovn-localdns-controller agent): $(summary "$ours")'" \
  -e "t2='Upstream behaviour (no fail-over): $(summary "$up")'" \
  "$here/failover.gp"
echo "wrote $out"
