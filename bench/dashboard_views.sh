#!/usr/bin/env bash
# The Grafana dashboard's views (deploy/monitoring/nodelocaldns-dashboard.json) plotted from
# metrics scraped during a real load run (issue 13). Needs root (network namespace).
#
# Inside a private network namespace (loopback only, everything on 127.0.0.x) it starts two
# knotd upstreams — 127.0.0.20 serving cluster.local (the kube-dns Service of the manifest) and
# 127.0.0.30 serving example.net (the "." upstream) — and node-cache with a Corefile shaped like
# deploy/kubernetes/nodelocaldns.yaml (a cluster.local block with force_tcp and a "." block, both
# with cache and prometheus :9253), bound to 127.0.0.10 and 127.0.0.11. dnsperf then drives four
# phases at a moderate rate while /metrics is scraped every second into a raw file:
#   warm-up   3,000 q/s, nearly every name new (misses, a tenth of them NXDOMAIN)
#   hits      5,000 q/s, 90 % of queries on 2,000 cached names, 5 % repeated NXDOMAIN names,
#             5 % new names
#   dead      the same mix with the "." upstream frozen (SIGSTOP): its new names time out and are
#             answered SERVFAIL, health checks fail, the upstream is marked down
#   recovery  the same mix, upstream resumed (SIGCONT)
# bench/dashboard_views.py then computes the dashboard's main panels from the scrapes (its PromQL
# approximated: rate over 4 s, histogram_quantile interpolation) and draws them with gnuplot.
#
# Usage: bench/dashboard_views.sh [--quick] [--out DIR] [--docs]
#   --quick   phases of 3-5 s (checks the pipeline; the figures are not the documented ones)
#   --out DIR keep the raw scrape, events, dnsperf outputs, series and PNGs there
#             (default: a temp dir, removed at exit)
#   --docs    write docs/results/<date>-dashboard/{scrape.prom.xz,summary.tsv,events.tsv} and
#             docs/img/dashboard-*.png (run it from a committed tree: the commit is recorded)
# Environment: NLD_BUILD_DIR (default <source>/build/release; build target node-cache there),
# NLD_SOURCE_DIR. Builds nothing. Every process it starts is stopped at exit (trap), the
# namespace removed.
set -uo pipefail

SRC_DIR=${NLD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${NLD_BUILD_DIR:-$SRC_DIR/build/release}
NODE_CACHE=$BUILD_DIR/src/cmd/node-cache/node-cache

QUICK=0
OUT_DIR=""
WRITE_DOCS=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --out) OUT_DIR=${2:?--out needs a directory}; shift ;;
    --docs) WRITE_DOCS=1 ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "dashboard_views.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf '[dashboard] %s\n' "$*" >&2; }
die() { printf '[dashboard] FATAL: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace)"
for tool in ip knotd dnsperf dig curl gnuplot /usr/bin/python3 xz; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done
[[ -x $NODE_CACHE ]] || die "node-cache binary not found at $NODE_CACHE (build target node-cache)"
((QUICK == 1 && WRITE_DOCS == 1)) && die "--docs records the full run, not --quick"

# phase name, seconds, queries per second
if ((QUICK)); then
  PHASES=("warm-up 4 3000" "hits 5 5000" "dead 5 5000" "recovery 4 5000")
else
  PHASES=("warm-up 20 3000" "hits 25 5000" "dead 25 5000" "recovery 20 5000")
fi

NS=nld-dash-$$
WORK=$(mktemp -d /tmp/nld-dash.XXXXXX)
declare -A PIDS=()
LOCAL_IP=127.0.0.10   # __PILLAR__LOCAL__DNS__
SVC_IP=127.0.0.11     # __PILLAR__DNS__SERVER__
CLUSTER_UP=127.0.0.20 # __PILLAR__CLUSTER__DNS__ (kube-dns)
EXT_UP=127.0.0.30     # __PILLAR__UPSTREAM__SERVERS__
METRICS=http://127.0.0.1:9253/metrics

source "$SRC_DIR/bench/lib.sh"
nsexec() { ip netns exec "$NS" "$@"; }

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  # A frozen upstream cannot act on TERM: resume it first.
  for pid in "${!PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null; stop_pid "$pid"; done
  ip netns del "$NS" 2>/dev/null
  if [[ -n $OUT_DIR ]]; then
    mkdir -p "$OUT_DIR" && cp -r "$WORK"/. "$OUT_DIR"/ 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

launch() {  # logname cmd... : runs cmd in the namespace in the background; sets LAST_PID
  local logname=$1
  shift
  (exec ip netns exec "$NS" "$@") >"$WORK/$logname.log" 2>&1 &
  LAST_PID=$!
  PIDS[$LAST_PID]=1
}

ip netns add "$NS" || die "cannot create network namespace $NS"
ip -n "$NS" link set lo up || die "cannot bring lo up in $NS"

# ---------------------------------------------------------------- upstreams -----------------
# Wildcards answer every name (hot names and new names alike); below nx.cluster.local nothing
# exists (NXDOMAIN, as a pod's search-path expansions mostly get).
mkdir -p "$WORK/knot-cluster/zones" "$WORK/knot-ext/zones"
cat >"$WORK/knot-cluster/zones/cluster.local.zone" <<EOF
\$ORIGIN cluster.local.
\$TTL 30
@ SOA ns hostmaster 1 3600 900 604800 30
@ NS ns
ns A $CLUSTER_UP
* A 10.96.0.10
nx TXT "no names below"
EOF
cat >"$WORK/knot-ext/zones/example.net.zone" <<EOF
\$ORIGIN example.net.
\$TTL 300
@ SOA ns hostmaster 1 3600 900 604800 300
@ NS ns
ns A $EXT_UP
* A 192.0.2.1
EOF
knot_conf "$WORK/knot-cluster" "$CLUSTER_UP" 53 cluster.local
knot_conf "$WORK/knot-ext" "$EXT_UP" 53 example.net
launch knotd-cluster knotd -c "$WORK/knot-cluster/knot.conf"
KNOT_CLUSTER=$LAST_PID
launch knotd-ext knotd -c "$WORK/knot-ext/knot.conf"
KNOT_EXT=$LAST_PID
wait_answer "$CLUSTER_UP" 53 probe.cluster.local 50 "$KNOT_CLUSTER" || die "knotd (cluster.local) did not answer"
wait_answer "$EXT_UP" 53 probe.example.net 50 "$KNOT_EXT" || die "knotd (example.net) did not answer"

# ---------------------------------------------------------------- node-cache ----------------
# The manifest's Corefile with its pillars filled in; in-addr.arpa and ip6.arpa (same shape as
# cluster.local) are left out because nothing queries them here.
cat >"$WORK/Corefile" <<EOF
cluster.local:53 {
    errors
    cache {
            success 9984 30
            denial 9984 5
    }
    reload
    loop
    bind $LOCAL_IP $SVC_IP
    forward . $CLUSTER_UP {
            force_tcp
    }
    prometheus :9253
    health $LOCAL_IP:8080
    }
.:53 {
    errors
    cache 30
    reload
    loop
    bind $LOCAL_IP $SVC_IP
    forward . $EXT_UP
    prometheus :9253
    }
EOF
launch node-cache "$NODE_CACHE" -conf "$WORK/Corefile" -localip "$LOCAL_IP,$SVC_IP" \
  -setupinterface=false -setupiptables=false -metrics-listen-address 127.0.0.1:9353 -statedir=
NC_PID=$LAST_PID
wait_answer "$LOCAL_IP" 53 ready.example.net 50 "$NC_PID" || {
  cat "$WORK/node-cache.log" >&2
  die "node-cache did not answer on $LOCAL_IP:53"
}
log "knotd x2 and node-cache (pid $NC_PID) up in $NS"

# ---------------------------------------------------------------- query files ---------------
# Hot set: 1,500 Service names and 500 external names; NX set: 200 names. Each phase's file
# is as long as the phase sends, so its "new" names are really new.
query_file() {  # phase count
  local f=$WORK/queries-$1.txt
  awk -v p="$1" -v n="$2" 'BEGIN {
    srand(42)
    for (i = 0; i < 2000; i++)    # every phase starts with the hot set (warm-up caches it)
      if (i % 4 == 3) printf "h%d.example.net A\n", i; else printf "svc%d.ns%d.svc.cluster.local A\n", i, i % 20
    for (i = 0; i < n; i++) {
      r = rand()
      if (p == "warm-up") {
        if (r < 0.60) printf "m%d.%s.svc.cluster.local A\n", i, p
        else if (r < 0.90) printf "m%d.%s.example.net A\n", i, p
        else printf "m%d.%s.nx.cluster.local A\n", i, p
      } else {
        if (r < 0.90) { h = int(rand() * 2000); if (h % 4 == 3) printf "h%d.example.net A\n", h; else printf "svc%d.ns%d.svc.cluster.local A\n", h, h % 20 }
        else if (r < 0.95) printf "x%d.nx.cluster.local A\n", int(rand() * 200)
        else if (r < 0.98) printf "m%d.%s.svc.cluster.local A\n", i, p
        else printf "m%d.%s.example.net A\n", i, p
      }
    }
  }' >"$f"
  echo "$f"
}

declare -A QFILE=()
for ph in "${PHASES[@]}"; do
  read -r name secs rate <<<"$ph"
  QFILE[$name]=$(query_file "$name" $((secs * rate)))
done

# ---------------------------------------------------------------- scraper -------------------
TOTAL=0
for ph in "${PHASES[@]}"; do read -r _ secs _ <<<"$ph"; TOTAL=$((TOTAL + secs)); done
RAW=$WORK/scrape.prom
EVENTS=$WORK/events.tsv
# One scrape per second at whole seconds, each preceded by "# scrape <unix time>"; it stops
# by itself 25 s after the last phase should have ended (dnsperf waits for its timeouts).
scraper() {
  local end=$(($(date +%s) + TOTAL + 25))
  while (($(date +%s) < end)); do
    printf '# scrape %s\n' "$(date +%s.%3N)"
    nsexec curl -s -m 0.9 "$METRICS" || printf '# scrape failed\n'
    sleep "$(date +%N | awk '{ printf "%.3f", 1 - $1 / 1e9 }')"
  done >>"$RAW"
}
scraper &
SCRAPER=$!
PIDS[$SCRAPER]=1
event() { printf '%s\t%s\n' "$1" "$(date +%s.%3N)" >>"$EVENTS"; }
printf 'event\tunix_time\n' >"$EVENTS"
sleep 3   # a few idle scrapes first

# ---------------------------------------------------------------- phases --------------------
# Each phase's dnsperf starts on time while the previous one may still wait for its last
# answers, so the offered load never pauses between phases.
PERF_PIDS=()
for ph in "${PHASES[@]}"; do
  read -r name secs rate <<<"$ph"
  case $name in
    dead) kill -STOP "$KNOT_EXT"; event upstream_frozen ;;
    recovery) kill -CONT "$KNOT_EXT"; event upstream_resumed ;;
  esac
  event "${name}_start"
  log "phase $name: $secs s at $rate q/s"
  # -q 3000: queries waiting on the frozen upstream (answered SERVFAIL after node-cache's
  # timeouts) must not stall the sending rate. -t 6: longer than node-cache takes to give up.
  launch "dnsperf-$name" dnsperf -s "$LOCAL_IP" -p 53 -d "${QFILE[$name]}" -l "$secs" -Q "$rate" -q 3000 -t 6
  PERF_PIDS+=("$LAST_PID:$name")
  sleep "$secs"
  event "${name}_end"
done
for p in "${PERF_PIDS[@]}"; do
  pid=${p%%:*}
  wait "${pid}"
  rc=$?
  unset "PIDS[$pid]"
  ((rc == 0)) || log "dnsperf (${p#*:}) exited $rc: $(tail -n 3 "$WORK/dnsperf-${p#*:}.log" | tr '\n' ' ')"
done
rm -f "${QFILE[@]}"
sleep 3
stop_pid "$SCRAPER"
kill -0 "$NC_PID" 2>/dev/null || die "node-cache died during the run (see its log)"
log "$(grep -c '^# scrape ' "$RAW") scrapes, $(grep -c '^# scrape failed' "$RAW") failed"

# ---------------------------------------------------------------- facts + analysis ----------
{
  printf 'fact\tvalue\n'
  printf 'commit\t%s\n' "$(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  printf 'tree_clean\t%s\n' "$( [[ -z $(git -C "$SRC_DIR" status --porcelain --untracked-files=no 2>/dev/null) ]] && echo yes || echo no)"
  printf 'date\t%s\n' "$(date -u +%FT%TZ)"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'kernel\t%s\n' "$(uname -r)"
  printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  printf 'loadavg_after\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf 'node_cache\t%s\n' "$("$NODE_CACHE" -version 2>&1 | head -n 1)"
  printf 'dnsperf\t%s\n' "$(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }')"
  printf 'knotd\t%s\n' "$(knotd --version 2>&1 | head -n 1)"
  for ph in "${PHASES[@]}"; do
    read -r name secs rate <<<"$ph"
    f=$WORK/dnsperf-$name.log
    printf 'dnsperf_%s\tsent %s completed %s lost %s qps %s avg_latency_s %s\n' "$name" \
      "$(perf_field "$f" "Queries sent")" "$(perf_field "$f" "Queries completed")" \
      "$(perf_field "$f" "Queries lost")" "$(perf_field "$f" "Queries per second")" \
      "$(awk '/Average Latency/ { print $4; exit }' "$f")"
  done
} >"$WORK/facts.tsv"

IMG_DIR=$WORK
[[ $WRITE_DOCS == 1 ]] && IMG_DIR=$SRC_DIR/docs/img
/usr/bin/python3 "$SRC_DIR/bench/dashboard_views.py" --raw "$RAW" --events "$EVENTS" --facts "$WORK/facts.tsv" \
  --series-dir "$WORK" --summary "$WORK/summary.tsv" --img-dir "$IMG_DIR" || die "analysis failed"

if ((WRITE_DOCS)); then
  d=$SRC_DIR/docs/results/$(date -u +%F)-dashboard
  mkdir -p "$d"
  xz -9 -c "$RAW" >"$d/scrape.prom.xz"
  cp "$EVENTS" "$WORK/summary.tsv" "$d/"
  log "wrote $d and $IMG_DIR/dashboard-*.png"
fi
cat "$WORK/summary.tsv"
