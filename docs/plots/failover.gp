# Fail-over timeline plot (docs/availability.md, "3. Fail-over in OVN"): answers to pod1 per
# 100 ms and which node answered them, for our fail-over run and the upstream-behaviour run.
# Input: the TSVs tests/e2e/failover_e2e.py writes (--timeline, --timeline-upstream). Run it via
# plot-failover.sh, which reads the event times from the TSVs and sets the variables used here:
#   ours, up (TSV paths), out (PNG path), k1 r1 d1 / k2 r2 d2 (kill, restart, cache-ready times in
#   seconds for run 1 / run 2), t1, t2 (panel titles).
set terminal pngcairo size 1000,640 font "DejaVu Sans,10"
set output out
set datafile separator "\t"
set multiplot layout 2,1 margins 0.07,0.98,0.08,0.93 spacing 0,0.1
set xrange [0:20]
set yrange [0:4.4]
set ytics 0,1,2
set xtics 0,1,20
set grid ytics lc rgb "#dddddd"
set ylabel "answers / 100 ms"
set boxwidth 0.1 absolute
set style fill solid 0.9 noborder
set key top right vertical opaque box lc rgb "#bbbbbb" samplen 2

do for [run=1:2] {
  unset arrow
  unset label
  k = (run == 1) ? k1 : k2
  r = (run == 1) ? r1 : r2
  d = (run == 1) ? d1 : d2
  f = (run == 1) ? ours : up
  set title ((run == 1) ? t1 : t2)
  set arrow 1 from k, graph 0 to k, graph 1 nohead lc rgb "#cc0000" dt 2 lw 1.5
  set label 1 "node1's cache\nSIGKILLed" at k, 2.75 offset 0.4,0 tc rgb "#cc0000"
  set arrow 2 from r, graph 0 to r, graph 1 nohead lc rgb "#555555" dt 3 lw 1.5
  set label 2 "restarted" at r, 2.75 right offset -0.4,0 tc rgb "#555555"
  set arrow 3 from d, graph 0 to d, graph 1 nohead lc rgb "#008800" dt 2 lw 1.5
  set label 3 "node1's cache\nanswers" at d, 2.75 offset 0.4,0 tc rgb "#008800"
  if (run == 2) { set xlabel "seconds since pod1 started querying (one query every 50 ms)" }
  plot f using ($1+0.05):($3+$4) with boxes lc rgb "#e69f00" title "answered by node2 (via node2's ovn0)", \
       f using ($1+0.05):3 with boxes lc rgb "#0072b2" title "answered by node1", \
       f using 1:5 with steps lc rgb "#444444" lw 1 title "queries sent"
}
unset multiplot
