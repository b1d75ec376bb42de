#!/usr/bin/env bash
# Reproduces bench/run.sh's LAT scenario alone, several times, to study its tail (issue 6; the
# findings are in bench/tail/README.md). Needs root (network namespace, cgroups, SCHED_FIFO).
#
# Same setup as run.sh: a private network namespace (loopback only), knotd as the upstream with a
# wildcard zone (TTL 3600), the server under test pinned to CPU 1 and knotd + dnsperf to CPU 0
# (cpuset cgroups), nice -10; during LAT a PM QoS request (/dev/cpu_dma_latency = 0) and
# SCHED_FIFO 10 for the server (all threads) and dnsperf; node-cache with run.sh's HIT Corefile
# (`cache 30`) and flags. Each run starts a fresh server, primes the 1,000 names, optionally waits
# (--pre-sleep), then runs dnsperf -Q 20000 -c 8 -q 200 -l S -v and reports, besides the
# percentiles, what tells the causes of a tail apart:
#   stalls   episodes of consecutive answers (completion order) slower than 1 ms: each is one
#            moment where nothing was answered (every query queued behind it); "max" is the
#            longest. An episode in every server alike points at the machine, not the server.
#   steal    the steal counters of CPU 0 and CPU 1 (/proc/stat, 10 ms ticks) over the run: time
#            the hypervisor did not run the vCPU.
#   misses   node-cache only: cache misses and upstream requests (coredns_proxy_request_duration_seconds_count) during LAT (should be 0; a miss
#            costs hundreds of µs to ms).
#   minflt   node-cache only: minor page faults of the worker thread(s) during LAT.
#   udp drops  UDP receive-buffer overflows in the namespace during LAT (/proc/net/snmp).
#
# Usage: bench/tail/lat_repro.sh [--server node-cache|reflector|both] [--runs N] [--seconds S]
#                                [--pre-sleep S] [--workers N] [--keep DIR]
#   --server     default both (alternating reflector, node-cache, reflector, ...)
#   --runs       runs per server (default 3)
#   --seconds    LAT length (default 5, as run.sh's full mode)
#   --pre-sleep  seconds between the prime and LAT (e.g. 27 makes `cache 30` entries expire
#                during LAT)
#   --keep DIR   keep the per-query latencies (<server>-<run>-lat-us.txt, completion order) and
#                dnsperf's output (<server>-<run>-dnsperf.txt)
# Environment: NLD_BUILD_DIR (default <source>/build-bench), NLD_SOURCE_DIR.
# Waits while another bench (bench/run.sh or any dnsperf) is running, so runs do not overlap.
# Everything it starts is killed by pid at exit (also on failure); the namespace and the cgroups
# it made are removed.
set -uo pipefail

SRC_DIR=${NLD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD_DIR=${NLD_BUILD_DIR:-$SRC_DIR/build-bench}
NODE_CACHE=$BUILD_DIR/src/cmd/node-cache/node-cache
REFLECTOR=$BUILD_DIR/bench/reflector/reflector

WHICH=both
RUNS=3
SECS=5
PRE_SLEEP=0
WORKERS=1
KEEP=""
num_arg() {  # flag value -> value if a non-negative number, else exit 2
  [[ $2 =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "lat_repro.sh: $1 needs a non-negative number, got '$2'" >&2; exit 2; }
  echo "$2"
}
while [[ $# -gt 0 ]]; do
  case $1 in
    --server) WHICH=${2:?--server needs a value}; shift ;;
    --runs) RUNS=$(num_arg --runs "${2:-}") || exit 2; shift ;;
    --seconds) SECS=$(num_arg --seconds "${2:-}") || exit 2; shift ;;
    --pre-sleep) PRE_SLEEP=$(num_arg --pre-sleep "${2:-}") || exit 2; shift ;;
    --workers) WORKERS=$(num_arg --workers "${2:-}") || exit 2; shift ;;
    --keep) KEEP=${2:?--keep needs a directory}; shift ;;
    -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "lat_repro.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case $WHICH in
  both) SERVERS=(reflector node-cache) ;;
  node-cache|reflector) SERVERS=("$WHICH") ;;
  *) echo "lat_repro.sh: --server must be node-cache, reflector or both" >&2; exit 2 ;;
esac
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "lat_repro.sh: --runs must be a positive integer" >&2; exit 2; }
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || { echo "lat_repro.sh: --workers must be a positive integer" >&2; exit 2; }

log() { printf '[lat] %s\n' "$*" >&2; }
die() { printf '[lat] FATAL: %s\n' "$*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, cgroups, SCHED_FIFO)"
for t in ip knotd dnsperf dig chrt awk curl; do command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh)"; done
[[ -x $NODE_CACHE ]] || die "node-cache not found at $NODE_CACHE (build target node-cache)"
[[ -x $REFLECTOR ]] || die "reflector not found at $REFLECTOR (build target reflector)"
(($(nproc --all) >= 2)) || die "needs 2 CPUs (server on CPU 1, load on CPU 0)"
[[ -f /sys/fs/cgroup/cpuset/cpuset.cpus || -f /sys/fs/cgroup/cgroup.controllers ]] || die "no cpuset cgroup"

NS=nld-lat-$$
WORK=$(mktemp -d /tmp/nld-lat.XXXXXX)
declare -A PIDS=()
CG_DIRS=()
QOS_FD=""
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z) == Z ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "PIDS[$pid]"
}
cleanup() {
  local rc=$? pid d
  trap - EXIT INT TERM
  [[ -n $QOS_FD ]] && exec {QOS_FD}>&-
  for pid in "${!PIDS[@]}"; do stop_pid "$pid"; done
  for d in "${CG_DIRS[@]}"; do
    [[ -f $d/cgroup.procs ]] && while read -r pid; do [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; done <"$d/cgroup.procs"
  done
  sleep 0.2
  for ((i = ${#CG_DIRS[@]} - 1; i >= 0; i--)); do rmdir "${CG_DIRS[i]}" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

# ---- cpusets: server on CPU 1, load on CPU 0 (cgroup v1 or v2), as run.sh
declare -A CG_JOIN
if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
  grep -qw cpuset /sys/fs/cgroup/cgroup.subtree_control || echo +cpuset >/sys/fs/cgroup/cgroup.subtree_control ||
    die "cannot enable the cpuset controller"
  for g in srv load; do
    d=/sys/fs/cgroup/nld-lat-$$-$g; mkdir "$d" || die "mkdir $d"; CG_DIRS+=("$d"); CG_JOIN[$g]=$d
  done
  echo 1 >"${CG_JOIN[srv]}/cpuset.cpus" && echo 0 >"${CG_JOIN[load]}/cpuset.cpus" || die "cpuset.cpus"
else
  mems=$(cat /sys/fs/cgroup/cpuset/cpuset.mems)
  for g in srv load; do
    d=/sys/fs/cgroup/cpuset/nld-lat-$$-$g; mkdir "$d" || die "mkdir $d"; CG_DIRS+=("$d"); CG_JOIN[$g]=$d
    echo "$mems" >"$d/cpuset.mems" || die "cpuset.mems"
  done
  echo 1 >"${CG_JOIN[srv]}/cpuset.cpus" && echo 0 >"${CG_JOIN[load]}/cpuset.cpus" || die "cpuset.cpus"
fi

launch() {  # logname group cmd... -> LAST_PID (the command's own pid: every step execs)
  local lg=$1 g=$2
  shift 2
  (echo "$BASHPID" >"${CG_JOIN[$g]}/cgroup.procs" || exit 97
   exec ip netns exec "$NS" nice -n -10 "$@") >"$WORK/$lg.log" 2>&1 &
  LAST_PID=$!
  PIDS[$LAST_PID]=1
}
nsexec() { ip netns exec "$NS" "$@"; }
answers() { nsexec dig +tries=1 +time=1 +retry=0 -p "$2" "@$1" "$3" A 2>/dev/null | grep -q 'status: NOERROR'; }
wait_answer() {  # addr port name pid
  local i
  for ((i = 0; i < 50; i++)); do
    kill -0 "$4" 2>/dev/null || return 1
    answers "$1" "$2" "$3" && return 0
    sleep 0.2
  done
  return 1
}

ip netns add "$NS" || die "cannot create namespace $NS"
ip -n "$NS" link set lo up || die "cannot bring lo up"

# ---- upstream: knotd, wildcard zone, TTL 3600
Z=bench.example
mkdir -p "$WORK/knot/zones" "$WORK/knot/db" "$WORK/knot/run"
printf '$ORIGIN %s.\n$TTL 3600\n@ SOA ns hostmaster 1 3600 900 604800 300\n@ NS ns\nns A 127.0.0.2\n* A 192.0.2.1\n' \
  "$Z" >"$WORK/knot/zones/$Z.zone"
cat >"$WORK/knot/knot.conf" <<EOF
server:
    rundir: $WORK/knot/run
    listen: 127.0.0.2@53
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $WORK/knot/db
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $WORK/knot/zones
zone:
  - domain: $Z
    file: $Z.zone
EOF
launch knotd load knotd -c "$WORK/knot/knot.conf"
wait_answer 127.0.0.2 53 "probe.$Z" "$LAST_PID" || { cat "$WORK/knotd.log" >&2; die "knotd did not answer"; }
cat >"$WORK/Corefile" <<EOF
.:5300 {
    bind 127.0.0.1
    cache 30
    forward . 127.0.0.2:53
}
EOF
awk -v z=$Z 'BEGIN { for (i = 0; i < 1000; i++) printf "h%d.hit.%s A\n", i, z }' >"$WORK/hit.txt"

wait_quiet() {  # another benchmark on the machine would disturb both
  local i
  for ((i = 0; i < 120; i++)); do
    pgrep -f 'bench/run.sh|dnsperf' >/dev/null || return 0
    ((i == 0)) && log "another benchmark is running; waiting (up to 10 min)"
    sleep 5
  done
  die "another benchmark kept running for 10 minutes"
}
dnsperf_run() {  # log args... (in the load cgroup, waits)
  local lg=$1
  shift
  launch "$lg" load "$@"
  local p=$LAST_PID
  wait "$p"
  local rc=$?
  unset "PIDS[$p]"
  return $rc
}
# UDP receive-buffer drops in the namespace (any socket: server, knotd, dnsperf, node-cache's
# upstream sockets), from /proc/net/snmp.
rcvbuf_errors() { nsexec awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp; }
steal() { awk -v c="cpu$1" '$1 == c { print $9 }' /proc/stat; }
metric_sum() {  # file regex -> sum of the matching samples
  awk -v re="$2" '$0 ~ re && $1 !~ /^#/ { s += $NF } END { printf "%d\n", s }' "$1"
}
worker_minflt() {  # sum of minor faults of all threads but the main one
  local t s=0
  for t in /proc/"$1"/task/*; do
    [[ ${t##*/} == "$1" ]] && continue
    s=$((s + $(sed 's/.*) //' "$t/stat" | awk '{print $8}')))
  done
  echo "$s"
}

RESULTS=$WORK/results.tsv
: >"$RESULTS"
one_run() {  # server run#
  local name=$1 r=$2 pid
  wait_quiet
  case $name in
    node-cache)
      launch srv srv "$NODE_CACHE" -conf "$WORK/Corefile" -localip 127.0.0.1 -setupinterface=false \
        -setupiptables=false -workers "$WORKERS" -metrics-listen-address 127.0.0.1:9353 -statedir= ;;
    reflector) launch srv srv "$REFLECTOR" -a 127.0.0.1 -p 5300 -b 8388608 ;;
  esac
  pid=$LAST_PID
  if ! wait_answer 127.0.0.1 5300 "ready.hit.$Z" "$pid"; then
    tail -n 20 "$WORK/srv.log" >&2
    stop_pid "$pid"
    die "$name did not answer"
  fi
  dnsperf_run prime dnsperf -s 127.0.0.1 -p 5300 -b 4096 -d "$WORK/hit.txt" -n 1 -q 50 -t 2 -l 20 || true
  sleep "$PRE_SLEEP"
  local m0="" f0=0
  if [[ $name == node-cache ]]; then
    nsexec curl -s --max-time 2 127.0.0.1:9353/metrics >"$WORK/m0" || true
    f0=$(worker_minflt "$pid")
  fi
  local s00 s10 s01 s11
  s00=$(steal 0); s10=$(steal 1)
  local d0 d1
  d0=$(rcvbuf_errors)
  if [[ -w /dev/cpu_dma_latency ]] && exec {QOS_FD}>/dev/cpu_dma_latency; then
    printf '\x00\x00\x00\x00' >&"$QOS_FD"
  else
    QOS_FD=""; log "cannot hold /dev/cpu_dma_latency: idle wake-ups included"
  fi
  chrt -f -a -p 10 "$pid" >/dev/null || die "chrt on the server failed"
  dnsperf_run lat chrt -f 10 dnsperf -s 127.0.0.1 -p 5300 -b 4096 -d "$WORK/hit.txt" -c 8 -q 200 \
    -Q 20000 -l "$SECS" -t 1 -v || log "dnsperf exited non-zero"
  chrt -o -a -p 0 "$pid" >/dev/null 2>&1
  [[ -n $QOS_FD ]] && { exec {QOS_FD}>&-; QOS_FD=""; }
  s01=$(steal 0); s11=$(steal 1)
  d1=$(rcvbuf_errors)
  local misses=- fwd=- flt=-
  if [[ $name == node-cache ]]; then
    flt=$(($(worker_minflt "$pid") - f0))
    if nsexec curl -s --max-time 2 127.0.0.1:9353/metrics >"$WORK/m1" && [[ -s $WORK/m0 ]]; then
      misses=$(($(metric_sum "$WORK/m1" '^coredns_cache_misses_total') - $(metric_sum "$WORK/m0" '^coredns_cache_misses_total')))
      fwd=$(($(metric_sum "$WORK/m1" '^coredns_proxy_request_duration_seconds_count') - $(metric_sum "$WORK/m0" '^coredns_proxy_request_duration_seconds_count')))
    fi
  fi
  kill -0 "$pid" 2>/dev/null || die "$name died during LAT (log: $(tail -n 3 "$WORK/srv.log" | tr '\n' ' '))"
  stop_pid "$pid"
  local lat=$WORK/$name-$r-lat-us.txt
  awk '$1 == ">" { printf "%.0f\n", $NF * 1e6 }' "$WORK/lat.log" >"$lat"
  [[ -s $lat ]] || die "no per-query latencies in dnsperf output: $(tail -n 3 "$WORK/lat.log" | tr '\n' ' ')"
  local line
  line=$(sort -g "$lat" | awk '{ a[NR] = $1 } END {
      n = NR; printf "%d %d %d %d %d", n, a[int(n * .50 + .999999)], a[int(n * .99 + .999999)], a[int(n * .999 + .999999)], a[n] }')
  local stalls
  stalls=$(awk '$1 > 1000 { if (NR != p + 1) n++; if ($1 > m) m = $1; p = NR } END { printf "%d %d", n, m }' "$lat")
  read -r n p50 p99 p999 pmax <<<"$line"
  local lost
  lost=$(awk '/Queries lost:/ { print $3; exit }' "$WORK/lat.log")
  read -r sn smax <<<"$stalls"
  printf '%-10s run %d: lost=%s n=%d p50=%d p99=%d p99.9=%d max=%d us | stalls>1ms=%d (max %d us) | steal cpu0/cpu1 +%d/+%d ticks | udp drops %d | misses %s fwd %s minflt %s\n' \
    "$name" "$r" "${lost:-?}" "$n" "$p50" "$p99" "$p999" "$pmax" "$sn" "$smax" $((s01 - s00)) $((s11 - s10)) $((d1 - d0)) "$misses" "$fwd" "$flt"
  printf '%s\t%s\t%s\t%s\n' "$name" "$p99" "$p999" "$sn" >>"$RESULTS"
  if [[ -n $KEEP ]]; then mkdir -p "$KEEP" && cp "$lat" "$KEEP/" && cp "$WORK/lat.log" "$KEEP/$name-$r-dnsperf.txt"; fi
  rm -f "$lat"
}

log "servers: ${SERVERS[*]}, $RUNS run(s) each, LAT ${SECS}s at 20k q/s, pre-sleep ${PRE_SLEEP}s"
for ((r = 1; r <= RUNS; r++)); do
  for s in "${SERVERS[@]}"; do one_run "$s" "$r"; done
done
for s in "${SERVERS[@]}"; do
  awk -F'\t' -v s="$s" '
    function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                   return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    $1 == s { n++; p99[n] = $2; p999[n] = $3; st += $4 }
    END { if (n) printf "%-10s median of %d: p99 %.0f us, p99.9 %.0f us; stall episodes >1 ms in all runs: %d\n", s, n, med(p99, n), med(p999, n), st }' "$RESULTS"
done
