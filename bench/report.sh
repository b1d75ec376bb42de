# Part of bench/run.sh (sourced, not run): prints the results table, the remarks and the issue-6
# targets of one run, draws docs/benchmarks.png with gnuplot and, with --docs, rewrites the results
# block of docs/benchmarks.md. Uses run.sh's globals (RESULTS, SERVER_LIST, WORK, MODE, ...) and
# its get() helper; kept apart only to keep run.sh readable.
# ---------------------------------------------------------------- report ------------------

MACHINE="$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $CPUS CPUs, kernel $(uname -r)"
TABLE=$WORK/table.md
{
  echo "| server | hit µs/q | × refl | hit kq/s | lost hit/lat/tcp/miss | miss µs/q | × refl | p50 µs | p99 µs | × refl | p99.9 µs | tcp µs/q | × refl | RSS MiB idle / 10k / 100k |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  R_HIT=$(get reflector hit_us); R_P99=$(get reflector lat_p99); R_TCP=$(get reflector tcp_us)
  for s in "${SERVER_LIST[@]}"; do
    skipped=$(get "$s" skipped); failed=$(get "$s" failed)
    if [[ -n $skipped ]]; then echo "| $s | $skipped | | | | | | | | | | | | |"; continue; fi
    if [[ -n $failed && -z $(get "$s" hit_us) ]]; then echo "| $s | FAILED: $failed | | | | | | | | | | | | |"; continue; fi
    awk -v s="$s" -v hit="$(get "$s" hit_us)" -v rh="$R_HIT" -v qps="$(get "$s" hit_qps)" \
        -v lost="$(get "$s" hit_lost)/$(get "$s" lat_lost)/$(get "$s" tcp_lost)/$(get "$s" miss_lost)" -v miss="$(get "$s" miss_us)" -v p50="$(get "$s" lat_p50)" \
        -v p99="$(get "$s" lat_p99)" -v rp99="$R_P99" -v p999="$(get "$s" lat_p99.9)" \
        -v tcp="$(get "$s" tcp_us)" -v rt="$R_TCP" -v ri="$(get "$s" rss_idle_kib)" \
        -v r10="$(get "$s" rss_10k_kib)" -v r100="$(get "$s" rss_100k_kib)" \
        -v died="$(get "$s" hit_died)$(get "$s" miss_died)$(get "$s" lat_died)$(get "$s" tcp_died)$(get "$s" rss_died)" '
      function num(x) { return x == "" ? "–" : x }
      function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "–" : sprintf("%.2f", a / b) }
      function mib(k) { return k == "" ? "–" : sprintf("%.1f", k / 1024) }
      BEGIN {
        name = s; if (died != "") name = s " (DIED)"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s |\n",
          name, num(hit), ratio(hit, rh), qps == "" ? "–" : sprintf("%.0f", qps / 1000), lost,
          num(miss), ratio(miss, rh), num(p50), num(p99), ratio(p99, rp99), num(p999),
          num(tcp), ratio(tcp, rt), mib(ri), mib(r10), mib(r100)
      }'
  done
} >"$TABLE"

# Everything that went wrong or looks suspicious, per server (lost queries, non-NOERROR answers,
# dnsperf errors, deaths), so a number in the table is never read without its caveats.
REMARKS=$WORK/remarks.md
for s in "${SERVER_LIST[@]}"; do
  r=""
  for sc in hit lat tcp miss; do
    v=$(get "$s" "${sc}_lost"); [[ -n $v && $v != 0 ]] && r+="$sc lost $v of $(get "$s" "${sc}_sent") (UDP receive-buffer drops in the namespace: $(get "$s" "${sc}_udp_drops"), of them at the upstream knotd: $(get "$s" "${sc}_upstream_drops")); "
    v=$(get "$s" "${sc}_errors"); [[ -n $v && $v != 0 ]] && r+="$sc $v non-NOERROR answers; "
    v=$(get "$s" "${sc}_error"); [[ -n $v ]] && r+="$sc failed ($v); "
    v=$(get "$s" "${sc}_died"); [[ -n $v ]] && r+="DIED during $sc; "
  done
  v=$(get "$s" rss_died); [[ -n $v ]] && r+="DIED during the RSS fill; "
  v=$(get "$s" lat_qps); [[ -n $v ]] && awk -v q="$v" 'BEGIN { exit !(q < 19000) }' && r+="LAT reached only $v q/s of 20000; "
  v=$(get "$s" lat_stalls); [[ -n $v && $v != 0 ]] && r+="LAT: $v stall(s) where answers came > 1 ms late (longest $(get "$s" lat_stall_max_us) µs; a frozen vCPU, see bench/tail/README.md); "
  [[ -n $r ]] && echo "- $s: ${r%; }"
done >"$REMARKS"

# What ran: versions of every program and the machine, kept with the raw results (--out).
{
  echo "commit: $(git -C "$SRC_DIR" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$SRC_DIR" diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "node-cache: $("$NODE_CACHE" -version 2>&1 | head -n 1)"
  [[ -n ${NLD_REFERENCE_NODE_CACHE:-} && -x ${NLD_REFERENCE_NODE_CACHE:-} ]] &&
    echo "k8s-node-cache: $NLD_REFERENCE_NODE_CACHE ($(sha256sum "$NLD_REFERENCE_NODE_CACHE" | cut -c1-16))"
  command -v dnsdist >/dev/null && echo "dnsdist: $(dnsdist --version 2>&1 | head -n 1)"
  command -v unbound >/dev/null && echo "unbound: $(unbound -V 2>&1 | head -n 1)"
  command -v dnsmasq >/dev/null && echo "dnsmasq: $(dnsmasq --version 2>&1 | head -n 1)"
  command -v kresd >/dev/null && echo "kresd: $(kresd --version 2>&1 | head -n 1)"
  echo "knotd: $(knotd --version 2>&1 | head -n 1)"
  echo "dnsperf: $(dnsperf -h 2>&1 | grep -m1 -i version)"
  echo "machine: $MACHINE"
  echo "cgroups: $CG_MODE; server CPU $CPU_SRV, load CPU $CPU_LOAD"
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$WORK/versions.txt"

echo
echo "nodelocaldns benchmark ($MODE mode, $(date -u '+%Y-%m-%d %H:%M UTC'), ${ELAPSED}s): $MACHINE"
echo "server on CPU $CPU_SRV, dnsperf + knotd on CPU $CPU_LOAD (cgroups: $CG_MODE); ratios are to the reflector of this run"
for n in "${NOTES[@]}"; do echo "NOTE: $n"; done
echo
cat "$TABLE"
echo
[[ -s $REMARKS ]] && { echo "Remarks:"; cat "$REMARKS"; echo; }

# Targets of issue 6, evaluated on this run.
TARGETS=$WORK/targets.md
{
  nc_hit=$(get node-cache-1w hit_us); nc_miss=$(get node-cache-1w miss_us)
  nc_p99=$(get node-cache-1w lat_p99); nc_lost=$(get node-cache-1w hit_lost)
  nc2_hit=$(get node-cache-2w hit_us); nc2_lost=$(get node-cache-2w hit_lost)
  ri=$(get node-cache-1w rss_idle_kib); r10=$(get node-cache-1w rss_10k_kib); r100=$(get node-cache-1w rss_100k_kib)
  awk -v rh="$R_HIT" -v rp="$R_P99" -v h="$nc_hit" -v m="$nc_miss" -v p="$nc_p99" -v l="$nc_lost" \
      -v h2="$nc2_hit" -v l2="$nc2_lost" -v sm="$(get scale ratio_2w_median)" -v smin="$(get scale ratio_2w_min)" \
      -v smax="$(get scale ratio_2w_max)" -v sp="$(get scale ratio_2w_pairs)" \
      -v sa="$(get scale ratio_auto_median)" -v samin="$(get scale ratio_auto_min)" -v samax="$(get scale ratio_auto_max)" \
      -v sap="$(get scale ratio_auto_pairs)" -v wauto="$(get scale workers_auto)" \
      -v st="$(get scale ratio_tcp2w_median)" -v stmin="$(get scale ratio_tcp2w_min)" -v stmax="$(get scale ratio_tcp2w_max)" \
      -v stp="$(get scale ratio_tcp2w_pairs)" -v t1="$(get node-cache-1w tcp_us)" -v t2="$(get node-cache-2w tcp_us)" \
      -v tl="$(get node-cache-1w tcp_lost)" -v tl2="$(get node-cache-2w tcp_lost)" \
      -v q1="$(get scale2 1w_qps)" -v q2="$(get scale2 2w_qps)" -v qa="$(get scale2 auto_qps)" -v wauto2="$(get scale2 workers_auto)" \
      -v u1="$(get scale2 tcp1w_us)" -v u2="$(get scale2 tcp2w_us)" -v kh="$(get k8s-node-cache hit_us)" -v ff="$(get forward-floor miss_us)" \
      -v pp="$(get pairs ratio_p99_median)" -v ppmin="$(get pairs ratio_p99_min)" -v ppmax="$(get pairs ratio_p99_max)" -v ppn="$(get pairs ratio_p99_pairs)" \
      -v pm="$(get pairs ratio_miss_median)" -v pmmin="$(get pairs ratio_miss_min)" -v pmmax="$(get pairs ratio_miss_max)" -v pmn="$(get pairs ratio_miss_pairs)" \
      -v pf="$(get pairs ratio_floor_median)" -v pfmin="$(get pairs ratio_floor_min)" -v pfmax="$(get pairs ratio_floor_max)" \
      -v po="$(get pairs ratio_over_floor_median)" -v pomin="$(get pairs ratio_over_floor_min)" -v pomax="$(get pairs ratio_over_floor_max)" -v rs="$(get node-cache-1w rss_start_kib)" -v ri="$ri" -v r10="$r10" -v r100="$r100" '
    function line(what, got, ok) { printf "| %s | %s | %s |\n", what, got, ok }
    # Ratios move about ±7 % between runs: a verdict that close to its limit says so.
    function cmp(a, lim, exact,   v) {
      if (a == "") return "not measured"
      v = (a + 0 <= lim) ? "met" : "NOT met"
      if (!exact && a / lim > 0.93 && a / lim < 1.07) v = v " (within the ±7 % run-to-run noise)"
      return v
    }
    BEGIN {
      print "| target (node-cache, 1 worker unless noted) | this run | verdict |"
      print "|---|---|---|"
      x = (h == "" || rh == "") ? "" : h / rh
      line("cache hit ≤ 1.25× reflector CPU/query", x == "" ? "–" : sprintf("%.2f×", x), cmp(x, 1.25))
      x = (m == "" || rh == "") ? "" : m / rh
      # With alternating pairs measured (PAIRS in run.sh), the verdict is their median; the
      # single-run ratio of the table is shown beside it.
      if (pm != "") {
        line("miss ≤ 2× reflector CPU/query",
             sprintf("%.2f× (median of %d alternating pairs, %.2f–%.2f; table %s)", pm, pmn, pmmin, pmmax, x == "" ? "–" : sprintf("%.2f×", x)), cmp(pm, 2))
      } else line("miss ≤ 2× reflector CPU/query", x == "" ? "–" : sprintf("%.2f×", x), cmp(x, 2))
      # From the PAIRS rounds when the floor was in them, else from the single runs of the table.
      x = ""
      if (pf != "" && po != "") {
        x = sprintf("floor %.2f× reflector (%.2f–%.2f); node-cache miss %.2f× the floor (%.2f–%.2f); medians of the same rounds",
                    pf, pfmin, pfmax, po, pomin, pomax)
      } else if (ff != "" && m != "" && rh != "") {
        x = sprintf("floor %.2f× reflector; node-cache miss %.2f× the floor (%s vs %s µs)", ff / rh, m / ff, m, ff)
      }
      if (x != "") line("(info) the floor of a miss: forward floor (4 datagrams, no logic) vs reflector; node-cache miss vs that floor", x, "–")
      x = (p == "" || rp == "") ? "" : p / rp
      if (pp != "") {
        line("p99 @ 20k q/s ≤ 1.3× reflector",
             sprintf("%.2f× (median of %d alternating pairs, %.2f–%.2f; table %s)", pp, ppn, ppmin, ppmax, x == "" ? "–" : sprintf("%.2f×, %s µs vs %s µs", x, p, rp)), cmp(pp, 1.3))
      } else line("p99 @ 20k q/s ≤ 1.3× reflector", x == "" ? "–" : sprintf("%.2f× (%s µs vs %s µs)", x, p, rp), cmp(x, 1.3))
      line("RSS idle ≤ 6 MiB", ri == "" ? "–" : sprintf("%.1f MiB", ri / 1024), cmp(ri == "" ? "" : ri / 1024, 6, 1))
      line("RSS with 10k names ≤ 12 MiB", r10 == "" ? "–" : sprintf("%.1f MiB", r10 / 1024), cmp(r10 == "" ? "" : r10 / 1024, 12, 1))
      line("RSS with 100k names ≤ 48 MiB", r100 == "" ? "–" : sprintf("%.1f MiB", r100 / 1024), cmp(r100 == "" ? "" : r100 / 1024, 48, 1))
      line("no query lost at -q 500 (HIT, 1 and 2 workers)", sprintf("%s / %s lost", l == "" ? "–" : l, l2 == "" ? "–" : l2),
           (l == "" ? "not measured" : (l + 0 == 0 && (l2 == "" || l2 + 0 == 0) ? "met" : "NOT met")))
      if (sa != "") {
        line("-workers unset, one core: CPU/query within noise (±7 %) of -workers 1 (HIT)",
             sprintf("%.2f× (median of %d alternating triples, %.2f–%.2f; %s worker(s) chosen)", sa, sap, samin, samax, wauto),
             # One worker chosen is -workers 1 itself: the ratio then measures the noise of this run.
             wauto + 0 == 1 ? "met (1 worker chosen: the same configuration as -workers 1, so the ratio is the noise of this run)" : cmp(sa, 1.07, 1))
      } else line("-workers unset, one core: CPU/query within noise of -workers 1 (HIT)", "–", "not measured")
      if (st != "") {
        line("2 workers TCP ≤ 1.3× 1 worker TCP CPU/query (one core: TCP goes to 1 of the 2 workers)",
             sprintf("%.2f× (median of %d alternating triples, %.2f–%.2f)", st, stp, stmin, stmax), cmp(st, 1.3))
      } else {
        x = (t2 == "" || t1 == "") ? "" : t2 / t1
        line("2 workers TCP ≤ 1.3× 1 worker TCP CPU/query (one core: TCP goes to 1 of the 2 workers)", x == "" ? "–" : sprintf("%.2f× (%s vs %s µs)", x, t2, t1), cmp(x, 1.3))
      }
      line("no query lost in TCP (1 and 2 workers)", sprintf("%s / %s lost", tl == "" ? "–" : tl, tl2 == "" ? "–" : tl2),
           (tl == "" ? "not measured" : (tl + 0 == 0 && (tl2 == "" || tl2 + 0 == 0) ? "met" : "NOT met")))
      if (sm != "") {
        line("(info) 2 workers sharing one core vs 1 worker, HIT CPU/query", sprintf("%.2f× (median of %d triples, %.2f–%.2f; table: %s vs %s µs)", sm, sp, smin, smax, h2, h), "–")
      }
      if (q1 != "") {
        line("(info) both CPUs (shared with dnsperf + knotd): HIT q/s with 1 / 2 workers / unset", sprintf("%.0f / %.0f / %s (%s workers chosen); 2w/1w %.2f×", q1, q2, qa == "" ? "–" : sprintf("%.0f", qa), wauto2, q2 / q1), "–")
      }
      if (u1 != "" && u2 != "") {
        line("2 workers TCP ≤ 1.3× 1 worker TCP CPU/query (both CPUs, shared with dnsperf + knotd)", sprintf("%.2f× (%s vs %s µs)", u2 / u1, u2, u1), cmp(u2 / u1, 1.3))
      }
      if (kh != "" && h != "") line("(info) the real k8s-dns-node-cache vs node-cache, HIT CPU/query", sprintf("%.1f× (%s vs %s µs)", kh / h, kh, h), "–")
      if (rs != "") line("(info) RSS at start with the HIT config (`cache 30`, 10k capacity)", sprintf("%.1f MiB", rs / 1024), "–")
    }'
} >"$TARGETS"
cat "$TARGETS"
echo

# ---------------------------------------------------------------- plot + docs -------------
plot() {  # png: CPU per query, latency at 20k q/s, RSS
  command -v gnuplot >/dev/null || { log "gnuplot not installed: no plot"; return 1; }
  local dat=$WORK/plot.dat s
  : >"$dat"
  for s in "${SERVER_LIST[@]}"; do
    [[ -n $(get "$s" hit_us) ]] || continue
    echo "\"$s\" $(get "$s" hit_us) $(get "$s" miss_us) $(get "$s" tcp_us) $(get "$s" lat_p50) $(get "$s" lat_p99) $(get "$s" lat_p99.9) $(get "$s" rss_idle_kib) $(get "$s" rss_10k_kib) $(get "$s" rss_100k_kib)" |
      awk '{ out = $1; for (i = 2; i <= 10; i++) { v = (i <= NF && $i != "") ? $i : "NaN"; if (i >= 8 && v != "NaN") v = v / 1024; out = out " " v } print out }' >>"$dat"
  done
  [[ -s $dat ]] || return 1
  local rss100=""
  [[ $RSS_BIG == 1 ]] && rss100=', "" using 10 title "100k names"'
  gnuplot <<EOF
set terminal pngcairo size 1500,520 noenhanced font ",10"
set output "$1"
set multiplot layout 1,3 title "nodelocaldns benchmark: server pinned to one core, dnsperf and knotd on the other"
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set xtics rotate by -30
set datafile missing "NaN"
set logscale y
set title "server CPU per answered query (lower is better)"
set ylabel "CPU µs / query"
set yrange [0.5:*]
plot "$dat" using 2:xtic(1) title "cache hit", "" using 3 title "miss (new name)", "" using 4 title "TCP hit"
set title "latency at 20,000 queries/s (cached names)"
set ylabel "µs"
set yrange [10:*]
plot "$dat" using 5:xtic(1) title "p50", "" using 6 title "p99", "" using 7 title "p99.9"
unset logscale y
set title "resident memory"
set ylabel "MiB"
set yrange [0:*]
plot "$dat" using 8:xtic(1) title "idle", "" using 9 title "10k names"$rss100
unset multiplot
EOF
}

PNG=$WORK/out/benchmarks.png
plot "$PNG" || true
if [[ $WRITE_DOCS == 1 ]]; then
  DOC=$SRC_DIR/docs/benchmarks.md
  [[ -f $PNG ]] && cp "$PNG" "$SRC_DIR/docs/benchmarks.png"
  BLOCK=$WORK/block.md
  {
    echo "<!-- BEGIN RESULTS (written by bench/run.sh --docs) -->"
    echo "Run: \`bench/run.sh\` ($MODE mode), $(date -u '+%Y-%m-%d %H:%M UTC'), ${ELAPSED} s; $MACHINE."
    echo "Server on CPU $CPU_SRV, dnsperf and knotd on CPU $CPU_LOAD (cgroups: $CG_MODE). Ratios are to the reflector of the same run."
    for n in "${NOTES[@]}"; do echo "NOTE: $n"; echo; done
    echo
    cat "$TABLE"
    echo
    [[ -s $REMARKS ]] && { echo "Remarks:"; echo; cat "$REMARKS"; echo; }
    cat "$TARGETS"
    echo
    echo "![server CPU per query](benchmarks.png)"
    echo "<!-- END RESULTS -->"
  } >"$BLOCK"
  if [[ -f $DOC ]] && grep -q 'BEGIN RESULTS' "$DOC"; then
    awk -v blk="$BLOCK" '
      /<!-- BEGIN RESULTS/ { while ((getline l < blk) > 0) print l; skip = 1; next }
      /<!-- END RESULTS/ { skip = 0; next }
      !skip { print }' "$DOC" >"$DOC.new" && mv "$DOC.new" "$DOC"
  else
    { echo "# Benchmarks"; echo; cat "$BLOCK"; } >"$DOC"
  fi
  log "wrote $DOC"
fi

