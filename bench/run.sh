#!/usr/bin/env bash
# nodelocaldns benchmark harness (issue 6). Needs root (network namespace, cgroups).
#
# Inside a private network namespace (loopback only) it starts knotd as the authoritative
# upstream (a generated zone whose wildcard answers every name), then for each server under test
# — the reflector (the ceiling), the forward floor (the reflector relaying each query to knotd
# and back: the four datagrams of a miss and nothing else; MISS only), node-cache with 1 and 2 workers, the real k8s-dns-node-cache
# (k8s-node-cache: the binary in $NLD_REFERENCE_NODE_CACHE, see ../shared/reference; skipped with
# a line when unset) on the same Corefile, and the Debian peers dnsdist, unbound, dnsmasq and
# knot-resolver as forwarding caches — pins the server to CPU 1 and
# dnsperf + knotd to CPU 0 (cpuset cgroup) and measures:
#   HIT   1,000 cached names, saturating (dnsperf -q 500): server CPU µs per answered query, lost
#   MISS  every name new (wildcard): server CPU µs per answered query
#   LAT   fixed 20,000 queries/s on cached names: avg / p50 / p99 / p99.9 from per-query latencies
#   TCP   cached names over a few pipelined TCP connections: server CPU µs per answered query
#   RSS   VmRSS idle, after 10k and after 100k distinct names (cache sized for 100k)
#   PAIRS LAT and MISS again, reflector and node-cache (1 worker) alternating (with the forward
#         floor's MISS between them when it is in the run): the p99 and miss
#         verdicts use the medians of the per-pair ratios (one frozen vCPU moves a run's p99 10×)
#   SCALE / SCALE-2CPU  node-cache -workers unset / 2 against 1 worker, alternating triples
# Every figure is also printed as a ratio to the reflector measured in the same run.
#
# Usage: bench/run.sh [--quick | --smoke] [--servers a,b,...] [--out DIR] [--docs]
#   --quick    shorter scenarios (whole run under ~2 min)
#   --smoke    ~2 s per scenario, node-cache (1 worker) and reflector only; checks that the harness
#              works (answers counted, no loss for node-cache HIT); asserts no performance target
#   --servers  subset of: reflector,forward-floor,node-cache-1w,node-cache-2w,k8s-node-cache,dnsdist,unbound,
#              dnsmasq,kresd
#   --out DIR  keep raw results there (default: a temp dir, removed at exit)
#   --docs     write docs/benchmarks.png and the results block of docs/benchmarks.md
#   --perf     also profile (perf record + perf stat) HIT of the reflector and node-cache, and
#              TCP of node-cache (1 and 2 workers), MISS of node-cache (1 worker) and of the forward
#              floor, in extra runs: out/perf-*.txt (perf stat counts syscalls too)
# Environment: NLD_BUILD_DIR (default <source>/build-bench), NLD_SOURCE_DIR, NLD_BENCH_SERVER_CPUS
# (the server's cpuset, default 1), NLD_REFERENCE_NODE_CACHE, NLD_BENCH_PAIRS (number of PAIRS).
#
# Everything it starts runs inside the namespace on 127.0.0.x and is killed at exit (trap), also
# on failure; the namespace and cgroups it made are removed.
set -uo pipefail

SRC_DIR=${NLD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${NLD_BUILD_DIR:-$SRC_DIR/build-bench}
NODE_CACHE=$BUILD_DIR/src/cmd/node-cache/node-cache
REFLECTOR=$BUILD_DIR/bench/reflector/reflector

MODE=full
SERVERS=""
OUT_DIR=""
WRITE_DOCS=0
DO_PERF=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) MODE=quick ;;
    --smoke) MODE=smoke ;;
    --servers) SERVERS=${2:?--servers needs a list}; shift ;;
    --out) OUT_DIR=${2:?--out needs a directory}; shift ;;
    --docs) WRITE_DOCS=1 ;;
    --perf) DO_PERF=1 ;;
    -h|--help) sed -n '2,36p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "run.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

case $MODE in
  full)  T_HIT=5; HIT_REPS=3; T_MISS=5; MISS_REPS=2; T_LAT=5; LAT_REPS=3; T_TCP=5; RSS_BIG=1; MISS_NAMES=400000 ;;
  quick) T_HIT=3; HIT_REPS=1; T_MISS=2; MISS_REPS=1; T_LAT=2; LAT_REPS=1; T_TCP=2; RSS_BIG=0; MISS_NAMES=200000 ;;
  smoke) T_HIT=2; HIT_REPS=1; T_MISS=2; MISS_REPS=1; T_LAT=2; LAT_REPS=1; T_TCP=2; RSS_BIG=0; MISS_NAMES=100000 ;;
esac
if [[ -z $SERVERS ]]; then
  if [[ $MODE == smoke ]]; then
    SERVERS=reflector,node-cache-1w
  else
    SERVERS=reflector,forward-floor,node-cache-1w,node-cache-2w,k8s-node-cache,dnsdist,unbound,dnsmasq,kresd
  fi
fi
IFS=, read -r -a SERVER_LIST <<<"$SERVERS"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] FATAL: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (network namespace, cgroups)"
for tool in ip knotd dnsperf dig awk; do
  command -v "$tool" >/dev/null || die "$tool not found (run scripts/setup.sh)"
done
[[ -x $NODE_CACHE ]] || die "node-cache binary not found at $NODE_CACHE (build target node-cache)"
[[ -x $REFLECTOR ]] || die "reflector not found at $REFLECTOR (build target reflector)"

NS=nld-bench-$$
WORK=$(mktemp -d /tmp/nld-bench.XXXXXX)
RESULTS=$WORK/results.tsv
: >"$RESULTS"
declare -A PIDS=()  # pids this script started and has not reaped yet
CG_DIRS=()
SRV_PID=""
SRV_ADDR=127.0.0.1
SRV_PORT=5300
UP_ADDR=127.0.0.2
UP_PORT=53
NOTES=()

# ---------------------------------------------------------------- cleanup -------------------
# stop_pid, wait_answer, knot_conf, perf_field, noerror_count
source "$SRC_DIR/bench/lib.sh"

cleanup() {
  local rc=$? pid d
  trap - EXIT INT TERM
  for pid in "${!PIDS[@]}"; do stop_pid "$pid"; done
  # Anything a server forked (dnsmasq's TCP children) is still in its cgroup: kill by pid.
  for d in "${CG_DIRS[@]}"; do
    if [[ -f $d/cgroup.procs ]]; then
      while read -r pid; do [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null; done <"$d/cgroup.procs"
    fi
  done
  sleep 0.2
  for d in "${CG_DIRS[@]}"; do rmdir "$d" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  if [[ -n $OUT_DIR ]]; then
    mkdir -p "$OUT_DIR" && cp -r "$WORK"/results.tsv "$WORK"/*.md "$WORK"/versions.txt "$WORK"/*.log "$WORK"/out \
      "$OUT_DIR"/ 2>/dev/null
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- CPU pinning ---------------
# Server on CPU 1, load (dnsperf, knotd) on CPU 0. cgroup v2: cpuset + cpu.stat in
# /sys/fs/cgroup/<child>; cgroup v1: the cpuset and cpuacct hierarchies. Without either:
# taskset (knotd may re-pin its threads) and /proc/PID/stat ticks.
CPUS=$(nproc --all)
CG_MODE=none
declare -A CG_JOIN  # group -> space-separated cgroup dirs to join
CPU_SRV=${NLD_BENCH_SERVER_CPUS:-1}  # cpuset list; e.g. 0-1 to let the server use both CPUs (shared with the load)
CPU_LOAD=0
if ((CPUS < 2)); then
  NOTES+=("only $CPUS CPU: server and load share a core; figures are not comparable to 2-core runs")
  CPU_SRV=0
fi

cg_make() {  # dir cpus
  mkdir -p "$1" || return 1
  CG_DIRS+=("$1")
}
setup_cgroups() {
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    if grep -qw cpuset /sys/fs/cgroup/cgroup.controllers &&
       { grep -qw cpuset /sys/fs/cgroup/cgroup.subtree_control ||
         echo +cpuset >/sys/fs/cgroup/cgroup.subtree_control; } 2>/dev/null; then
      local s=/sys/fs/cgroup/nld-bench-$$-srv l=/sys/fs/cgroup/nld-bench-$$-load
      cg_make "$s" && cg_make "$l" || return 1
      echo "$CPU_SRV" >"$s/cpuset.cpus" && echo "$CPU_LOAD" >"$l/cpuset.cpus" || return 1
      CG_JOIN[srv]=$s; CG_JOIN[load]=$l; CG_ACCT=$s; CG_MODE=v2
      return 0
    fi
    return 1
  fi
  local cs=/sys/fs/cgroup/cpuset ca=/sys/fs/cgroup/cpuacct
  [[ -f $cs/cpuset.cpus && -f $ca/cpuacct.usage ]] || return 1
  local mems
  mems=$(cat "$cs/cpuset.mems")
  cg_make "$cs/nld-bench-$$-srv" && cg_make "$cs/nld-bench-$$-load" &&
    cg_make "$ca/nld-bench-$$-srv" || return 1
  echo "$CPU_SRV" >"$cs/nld-bench-$$-srv/cpuset.cpus" && echo "$mems" >"$cs/nld-bench-$$-srv/cpuset.mems" &&
    echo "$CPU_LOAD" >"$cs/nld-bench-$$-load/cpuset.cpus" && echo "$mems" >"$cs/nld-bench-$$-load/cpuset.mems" ||
    return 1
  CG_JOIN[srv]="$cs/nld-bench-$$-srv $ca/nld-bench-$$-srv"
  CG_JOIN[load]="$cs/nld-bench-$$-load"
  CG_ACCT=$ca/nld-bench-$$-srv
  CG_MODE=v1
}
if ! setup_cgroups; then
  CG_MODE=none
  NOTES+=("no usable cpuset cgroup: pinned with taskset (knotd may re-pin); CPU from /proc/PID/stat ticks")
fi
CLK_TCK=$(getconf CLK_TCK)

# Unrelated load on the machine (compilers...) is not confined by our cpusets. Everything the
# benchmark starts runs at the same raised priority (nice -10: ~9x the CFS weight of a nice-0
# task), so it is measured with less interference and no server is favoured over another.
NICE=-10

# Runs "$@" in the background inside the namespace, in cgroup group $2, at nice $NICE (the pid
# stays the command's: every step execs); sets LAST_PID.
launch() {  # logname group cmd...
  local logname=$1 group=$2
  shift 2
  if [[ $CG_MODE == none ]]; then
    local cpu=$CPU_LOAD
    [[ $group == srv ]] && cpu=$CPU_SRV
    (exec taskset -c "$cpu" ip netns exec "$NS" nice -n "$NICE" "$@") >"$WORK/$logname.log" 2>&1 &
  else
    (
      for d in ${CG_JOIN[$group]}; do echo "$BASHPID" >"$d/cgroup.procs" || exit 97; done
      exec ip netns exec "$NS" nice -n "$NICE" "$@"
    ) >"$WORK/$logname.log" 2>&1 &
  fi
  LAST_PID=$!
  PIDS[$LAST_PID]=1
}

# Server CPU time in microseconds (whole cgroup, or the server process and its reaped children).
server_cpu_us() {
  case $CG_MODE in
    v1) awk '{printf "%.0f\n", $1 / 1000}' "$CG_ACCT/cpuacct.usage" ;;
    v2) awk '$1 == "usage_usec" {print $2}' "$CG_ACCT/cpu.stat" ;;
    none) sed 's/.*) //' "/proc/$SRV_PID/stat" |
            awk -v t="$CLK_TCK" '{printf "%.0f\n", ($12 + $13 + $14 + $15) * 1e6 / t}' ;;
  esac
}

rss_kib() { awk '$1 == "VmRSS:" {print $2}' "/proc/$SRV_PID/status" 2>/dev/null || echo 0; }
# "anon file shmem" KiB of the server's resident set (where the RSS goes).
rss_split() { awk '$1 == "RssAnon:" {a = $2} $1 == "RssFile:" {f = $2} $1 == "RssShmem:" {s = $2} END {print a + 0, f + 0, s + 0}' "/proc/$SRV_PID/status" 2>/dev/null; }

# LAT measures wake-up latency, which on this kind of machine two things swamp, so during LAT
# only (the other scenarios measure CPU time, which neither affects):
# - an idle vCPU halts and takes hundreds of µs to milliseconds to wake (cpuidle "haltpoll"):
#   a PM QoS request (/dev/cpu_dma_latency = 0, held open) keeps idle CPUs polling;
# - unrelated load (other builds) on the server's core delays its wake-ups by a scheduler
#   slice: the server runs SCHED_FIFO and dnsperf SCHED_RR (priority 10; at 20k q/s both stay
#   far below the kernel's 95 % RT throttle) so they preempt it. Every server gets the same
#   treatment. dnsperf is round-robin, not FIFO: its threads share the one load CPU, and at the
#   end of a run one of them polls its sockets in a loop until another one runs; under FIFO the
#   other never did (2026-12-04: dnsperf 2.10 at 95 % CPU for 5 and 18 minutes after its last
#   answer, twice in ~40 LAT runs), under RR it gets the CPU after one 100 ms slice.
QOS_FD=""
LAT_PREFIX=()
lat_mode_on() {
  if [[ -w /dev/cpu_dma_latency ]] && exec {QOS_FD}>/dev/cpu_dma_latency; then
    printf '\x00\x00\x00\x00' >&"$QOS_FD"
  else
    QOS_FD=""
    [[ ${QOS_NOTED:-0} == 1 ]] || NOTES+=("/dev/cpu_dma_latency not writable: LAT includes idle-state wake-up latency")
    QOS_NOTED=1
  fi
  if command -v chrt >/dev/null && chrt -f -a -p 10 "$SRV_PID" >/dev/null 2>&1; then
    LAT_PREFIX=(chrt -r 10)
  else
    LAT_PREFIX=()
    [[ ${RT_NOTED:-0} == 1 ]] || NOTES+=("SCHED_FIFO not available: LAT includes scheduling delays from other load")
    RT_NOTED=1
  fi
}
lat_mode_off() {
  if [[ -n $QOS_FD ]]; then exec {QOS_FD}>&-; QOS_FD=""; fi
  if ((${#LAT_PREFIX[@]})); then chrt -o -a -p 0 "$SRV_PID" >/dev/null 2>&1; fi
  LAT_PREFIX=()
  return 0
}

# ---------------------------------------------------------------- namespace + upstream ------
ip netns add "$NS" || die "cannot create network namespace $NS"
ip -n "$NS" link set lo up || die "cannot bring lo up in $NS"
mkdir -p "$WORK/knot/zones" "$WORK/knot/db" "$WORK/knot/run" "$WORK/out"

ZONE=bench.example
{
  echo "\$ORIGIN $ZONE."
  echo "\$TTL 3600"
  echo "@ SOA ns hostmaster 1 3600 900 604800 300"
  echo "@ NS ns"
  echo "ns A $UP_ADDR"
  echo "* A 192.0.2.1"   # every other name exists: hit names, unique miss names
} >"$WORK/knot/zones/$ZONE.zone"
knot_conf "$WORK/knot" "$UP_ADDR" "$UP_PORT" "$ZONE"

nsexec() { ip netns exec "$NS" "$@"; }

launch knotd load knotd -c "$WORK/knot/knot.conf"
KNOT_PID=$LAST_PID
wait_answer "$UP_ADDR" "$UP_PORT" "probe.$ZONE" 50 "$KNOT_PID" || {
  cat "$WORK/knotd.log" >&2
  die "knotd did not answer on $UP_ADDR:$UP_PORT"
}
log "knotd up (pid $KNOT_PID), cgroups: $CG_MODE, server CPU $CPU_SRV, load CPU $CPU_LOAD, mode $MODE"

# ---------------------------------------------------------------- query files --------------
HOT_NAMES=1000
awk -v n=$HOT_NAMES -v z=$ZONE 'BEGIN { for (i = 0; i < n; i++) printf "h%d.hit.%s A\n", i, z }' \
  >"$WORK/hit.txt"
miss_file() {  # tag count -> path of a file of names nobody has asked for yet
  local f=$WORK/miss-$1.txt
  awk -v n="$2" -v t="$1" -v z=$ZONE 'BEGIN { for (i = 0; i < n; i++) printf "m%d.%s.miss.%s A\n", i, t, z }' >"$f"
  echo "$f"
}

# ---------------------------------------------------------------- dnsperf -----------------
# run_dnsperf outfile args... : runs dnsperf in the load cgroup against the server under test.
run_dnsperf() {
  local out=$1
  shift
  # A cap on dnsperf's run time (-l + 60 s), so that the harness stops by itself whatever
  # dnsperf does (see lat_mode_on for the hang that made it necessary). `timeout` stays an
  # ordinary task outside LAT_PREFIX: under it, it would compete with dnsperf's RT threads.
  local cap=600 a prev=""
  for a in "$@"; do
    [[ $prev == -l ]] && cap=$((${a%.*} + 60))
    prev=$a
  done
  launch dnsperf load timeout -k 5 "$cap" "${LAT_PREFIX[@]}" dnsperf -s "$SRV_ADDR" -p "$SRV_PORT" -b 4096 "$@"
  local pid=$LAST_PID
  wait "$pid"
  local rc=$?
  unset "PIDS[$pid]"
  mv "$WORK/dnsperf.log" "$out"
  if ((rc == 124 || rc == 137)); then
    log "dnsperf did not stop within ${cap} s: killed (figures of this run are not used)"
    return 1
  fi
  if ((rc != 0)); then
    log "dnsperf exited $rc: $(tail -n 3 "$out" | tr '\n' ' ')"
    return 1
  fi
  return 0
}
record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; }
get() { awk -F'\t' -v s="$1" -v k="$2" '$1 == s && $2 == k { v = $3 } END { print v }' "$RESULTS"; }

# ---------------------------------------------------------------- servers -----------------
corefile() {  # mode(hit|rss) -> node-cache Corefile path
  local f=$WORK/Corefile.$1
  if [[ $1 == hit ]]; then
    cat >"$f" <<EOF
.:$SRV_PORT {
    bind $SRV_ADDR
    cache 30
    forward . $UP_ADDR:$UP_PORT
}
EOF
  else
    cat >"$f" <<EOF
.:$SRV_PORT {
    bind $SRV_ADDR
    cache {
        success 100000 3600
        denial 10000 600
    }
    forward . $UP_ADDR:$UP_PORT
}
EOF
  fi
  echo "$f"
}

# start_server name mode: writes the config, launches it pinned, waits for an answer.
# Cache capacity is the same for every server that counts entries: node-cache's Corefile holds
# 100,000 positive + 10,000 negative answers in RSS mode (10,000 + 10,000 otherwise, `cache 30`
# sizes), so dnsdist's and dnsmasq's single caches get the sum.
start_server() {
  local name=$1 mode=$2 entries=20000
  [[ $mode == rss ]] && entries=110000
  local d=$WORK/srv-$name-$mode
  mkdir -p "$d"
  case $name in
    reflector)
      launch "$name" srv "$REFLECTOR" -a "$SRV_ADDR" -p "$SRV_PORT" -b 8388608 ;;
    forward-floor)
      # The reflector in forwarding mode: every query to the upstream and back, four datagrams
      # and nothing else (no parsing, no cache): the floor of a forwarder's miss.
      launch "$name" srv "$REFLECTOR" -a "$SRV_ADDR" -p "$SRV_PORT" -b 8388608 -f "$UP_ADDR:$UP_PORT" ;;
    node-cache-1w|node-cache-2w|node-cache-auto)
      # node-cache-auto: -workers unset, so node-cache picks the count from the CPUs it may use
      # (affinity/cpuset, cgroup CPU quota): 1 when pinned to one core.
      local workers=${name#node-cache-} wflag=()
      workers=${workers%w}
      [[ $workers != auto ]] && wflag=(-workers "$workers")
      launch "$name" srv "$NODE_CACHE" -conf "$(corefile "$mode")" -localip "$SRV_ADDR" -setupinterface=false \
        -setupiptables=false "${wflag[@]}" -metrics-listen-address 127.0.0.1:9353 \
        -statedir= ;;  # no handover, no snapshot: every launch is a fresh, cold server
    k8s-node-cache)
      # The upstream binary on the same Corefile and flags (it has no -workers and no -statedir;
      # Go uses every CPU of its cpuset, i.e. the one it is pinned to).
      launch "$name" srv "$NLD_REFERENCE_NODE_CACHE" -conf "$(corefile "$mode")" -localip "$SRV_ADDR" \
        -setupinterface=false -setupiptables=false -metrics-listen-address 127.0.0.1:9353 ;;
    dnsdist)
      cat >"$d/dnsdist.conf" <<EOF
setSecurityPollSuffix("")
setUDPSocketBufferSizes(8388608, 8388608)
setLocal("$SRV_ADDR:$SRV_PORT")
newServer({address="$UP_ADDR:$UP_PORT"}):setUp()
pc = newPacketCache($entries, {maxTTL=86400, minTTL=0, temporaryFailureTTL=60, staleTTL=60, dontAge=false})
getPool(""):setCache(pc)
EOF
      launch "$name" srv dnsdist --supervised --disable-syslog -C "$d/dnsdist.conf" ;;
    unbound)
      cat >"$d/unbound.conf" <<EOF
server:
    interface: $SRV_ADDR@$SRV_PORT
    port: $SRV_PORT
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "$d"
    pidfile: "$d/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    so-rcvbuf: 8m
    so-reuseport: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    do-ip6: no
    qname-minimisation: no
    module-config: "iterator"
    msg-cache-size: 64m
    rrset-cache-size: 128m
    key-cache-size: 1m
    neg-cache-size: 1m
    outgoing-range: 4096
    num-queries-per-thread: 2048
    minimal-responses: yes
    prefetch: no
forward-zone:
    name: "."
    forward-addr: $UP_ADDR@$UP_PORT
EOF
      launch "$name" srv unbound -d -c "$d/unbound.conf" ;;
    dnsmasq)
      launch "$name" srv dnsmasq -k -C /dev/null --no-resolv --no-hosts --bind-interfaces \
        --listen-address="$SRV_ADDR" --port="$SRV_PORT" --server="$UP_ADDR#$UP_PORT" \
        --cache-size="$entries" --dns-forward-max=1000 --user=root --pid-file="$d/dnsmasq.pid" ;;
    kresd)
      cat >"$d/kresd.conf" <<EOF
net.listen('$SRV_ADDR', $SRV_PORT, { kind = 'dns' })
trust_anchors.remove('.')
cache.open(256 * MB, 'lmdb://$d/cache')
policy.add(policy.all(policy.FORWARD('$UP_ADDR@$UP_PORT')))
EOF
      launch "$name" srv kresd -n -q -c "$d/kresd.conf" "$d" ;;
    *) die "unknown server '$name'" ;;
  esac
  SRV_PID=$LAST_PID
  if ! wait_answer "$SRV_ADDR" "$SRV_PORT" "ready.hit.$ZONE" 50 "$SRV_PID"; then
    log "$name did not answer on $SRV_ADDR:$SRV_PORT; its log:"
    tail -n 20 "$WORK/$name.log" >&2
    stop_pid "$SRV_PID"
    return 1
  fi
  return 0
}

stop_server() {
  stop_pid "$SRV_PID"
  if ! grep -q . "$WORK/$1.log" 2>/dev/null; then rm -f "$WORK/$1.log"; fi
  SRV_PID=""
}

server_alive() { kill -0 "$SRV_PID" 2>/dev/null && [[ $(awk '{print $3}' "/proc/$SRV_PID/stat" 2>/dev/null) != Z ]]; }

# measure name scenario outfile dnsperf-args... : CPU µs per answered query over one dnsperf run.
# Returns 0 if measured, 1 if dnsperf failed (recorded as <sc>_error, the server may go on),
# 2 if the server died (recorded as <sc>_died).
# UDP datagrams the kernel dropped in the namespace for a full receive buffer: all sockets, and
# knotd's (the upstream) alone. A lost query with a drop at knotd was lost upstream.
udp_drops_all() { nsexec awk '$1 == "Udp:" { if (h) { print $6; exit } h = 1 }' /proc/net/snmp; }
udp_drops_knotd() {
  nsexec ss -uanmp 2>/dev/null | awk '/users:/ { u = $0; next }
    /skmem/ { if (u ~ /"knotd"/ && match($0, /,d[0-9]+\)/)) s += substr($0, RSTART + 2, RLENGTH - 3); u = "" }
    END { print s + 0 }'
}

measure() {
  local name=$1 sc=$2 out=$3
  shift 3
  local c0 c1 rc=0 d0 d1 k0 k1
  d0=$(udp_drops_all); k0=$(udp_drops_knotd)
  c0=$(server_cpu_us)
  run_dnsperf "$out" "$@" || rc=1
  c1=$(server_cpu_us)
  d1=$(udp_drops_all); k1=$(udp_drops_knotd)
  record "$name" "${sc}_udp_drops" "$(( ${d1:-0} - ${d0:-0} ))"
  record "$name" "${sc}_upstream_drops" "$(( ${k1:-0} - ${k0:-0} ))"
  if ! server_alive; then
    log "  $name DIED during $sc; log tail:"
    tail -n 20 "$WORK/$name.log" >&2
    record "$name" "${sc}_died" 1
    return 2
  fi
  if ((rc != 0)); then
    record "$name" "${sc}_error" "dnsperf: $(grep -m1 -E '^(Error|Fatal)' "$out" || tail -n 1 "$out")"
    return 1
  fi
  local done_q lost sent noerr qps
  done_q=$(perf_field "$out" "Queries completed")
  lost=$(perf_field "$out" "Queries lost")
  sent=$(perf_field "$out" "Queries sent")
  qps=$(perf_field "$out" "Queries per second")
  noerr=$(noerror_count "$out")
  record "$name" "${sc}_sent" "${sent:-0}"
  record "$name" "${sc}_answered" "${done_q:-0}"
  record "$name" "${sc}_lost" "${lost:-0}"
  record "$name" "${sc}_errors" "$(( ${done_q:-0} - ${noerr:-0} ))"
  record "$name" "${sc}_qps" "${qps:-0}"
  if [[ ${done_q:-0} -gt 0 ]]; then
    record "$name" "${sc}_us" "$(awk -v a="$c0" -v b="$c1" -v n="$done_q" 'BEGIN { printf "%.3f", (b - a) / n }')"
  fi
  log "  $sc: answered ${done_q:-0}/${sent:-0} lost ${lost:-0} non-NOERROR $(( ${done_q:-0} - ${noerr:-0} )) ${qps:-0} q/s CPU $(( c1 - c0 )) µs"
  return 0
}

# median format values...: the median of the values, printed with the printf format.
median() {
  local f=$1
  shift
  printf '%s\n' "$@" | sort -g | awk -v f="$f" '{ a[NR] = $1 } END { printf f, (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# combine_reps name sc n: <sc>_us and <sc>_qps = median over the repetitions <sc>_r1..n; sent,
# answered, lost, errors = sums; an error of any repetition is kept.
combine_reps() {
  local name=$1 sc=$2 n=$3 k m i v
  for k in us qps; do
    v=()
    for ((i = 1; i <= n; i++)); do
      m=$(get "$name" "${sc}_r${i}_$k")
      [[ -n $m ]] && v+=("$m")
    done
    ((${#v[@]} > 0)) || continue
    m=$(median %.3f "${v[@]}")
    record "$name" "${sc}_$k" "$m"
  done
  for k in sent answered lost errors udp_drops upstream_drops; do
    m=""""
    for ((i = 1; i <= n; i++)); do
      v=$(get "$name" "${sc}_r${i}_$k")
      [[ -n $v ]] && m=$(( ${m:-0} + v ))
    done
    [[ -n $m ]] && record "$name" "${sc}_$k" "$m"
  done
  for ((i = 1; i <= n; i++)); do
    v=$(get "$name" "${sc}_r${i}_error")
    [[ -n $v ]] && { record "$name" "${sc}_error" "$v"; break; }
  done
  if ((n > 1)); then log "  $sc: median of $n runs: $(get "$name" "${sc}_us") µs/query"; fi
  return 0
}

prime() { run_dnsperf "$WORK/out/$1-prime.txt" -d "$WORK/hit.txt" -n 1 -q 50 -t 2 -l 20 >/dev/null || true; }

# perf_profile name scenario dnsperf-args... : flat `perf record` profile of the server during
# one extra dnsperf run (not the measured one: perf's sampling costs CPU in the server too).
# Writes out/perf-<name>-<scenario>.txt (by symbol) and .dso.txt (by binary/kernel).
perf_profile() {
  local name=$1 sc=$2
  shift 2
  command -v perf >/dev/null || { log "  perf not installed: no profile"; return 0; }
  local data=$WORK/perf-$name-$sc.data rep=$WORK/out/perf-$name-$sc
  perf record -F 4999 -p "$SRV_PID" -o "$data" >"$WORK/perf-record.log" 2>&1 &
  local ppid=$!
  PIDS[$ppid]=1
  # Syscalls too (the tracepoint needs tracefs; without it perf stat reports it unsupported).
  perf stat -e task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter -p "$SRV_PID" \
    -o "$rep.stat.txt" &
  local spid=$!
  PIDS[$spid]=1
  sleep 0.3
  run_dnsperf "$WORK/out/$name-perf-$sc.txt" "$@" || true
  kill -INT "$ppid" "$spid" 2>/dev/null
  wait "$ppid" 2>/dev/null
  wait "$spid" 2>/dev/null
  unset "PIDS[$ppid]" "PIDS[$spid]"
  echo "answered: $(perf_field "$WORK/out/$name-perf-$sc.txt" "Queries completed")" >>"$rep.stat.txt"
  # "share dso symbol", highest first, without perf's column padding and IPC columns.
  perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null |
    awk '/^ *[0-9.]+%/ { $1 = $1; sub(/ +- +-$/, ""); print }' | sort -gr | awk '$1 + 0 >= 0.4' >"$rep.txt"
  perf report -i "$data" --no-children --sort dso --stdio 2>/dev/null |
    awk '/^ *[0-9.]+%/ { $1 = $1; sub(/ +- +-$/, ""); print }' | sort -gr >"$rep.dso.txt"
  rm -f "$data"
  log "  perf profile ($sc): $rep.txt"
}

# rss_fill name tag count before: asks `count` new names, then records rss_<tag>_kib, _split and
# _answered (plus `before`, the names cached by earlier fills).
rss_fill() {
  local name=$1 tag=$2 count=$3 before=$4 f
  f=$(miss_file "rss$tag-$name" "$count")
  run_dnsperf "$WORK/out/$name-rss$tag.txt" -d "$f" -n 1 -c 16 -q 200 -l 90 -t 2 || true
  sleep 0.5
  record "$name" "rss_${tag}_kib" "$(rss_kib)"
  record "$name" "rss_${tag}_split" "$(rss_split)"
  record "$name" "rss_${tag}_answered" "$(( $(perf_field "$WORK/out/$name-rss$tag.txt" "Queries completed") + before ))"
  rm -f "$f"
}

# lat_run name rep: one LAT run (fixed 20k q/s on cached names); records lat_r<rep>_avg, _p50,
# _p99, _p99.9 from the per-query latencies, and _stalls / _stall_max_us: episodes where answers
# came more than 1 ms late (a frozen vCPU delays every answer in flight at once; see
# bench/tail/README.md) and the longest. Returns 2 if the server died.
lat_run() {
  local name=$1 rep=$2 rc
  local lat=$WORK/out/$name-lat$rep.txt us=$WORK/out/$name-lat$rep-us.txt sc=lat_r$rep
  lat_mode_on
  measure "$name" "$sc" "$lat" -d "$WORK/hit.txt" -c 8 -q 200 -Q 20000 -l "$T_LAT" -t 1 -v
  rc=$?
  lat_mode_off
  ((rc == 2)) && { record "$name" lat_died 1; return 2; }
  if ((rc == 0)); then
    # Per-query latencies in completion order are kept (out/<server>-lat<rep>-us.txt) to tell a
    # periodic stall from uniform noise.
    awk '$1 == ">" { printf "%.0f\n", $NF * 1e6 }' "$lat" >"$us"
    sort -g "$us" >"$WORK/lat-sorted.txt"
    local n p
    n=$(wc -l <"$WORK/lat-sorted.txt")
    if ((n > 0)); then
      record "$name" "${sc}_avg" "$(awk '{ s += $1 } END { printf "%.1f", s / NR }' "$WORK/lat-sorted.txt")"
      for p in 50 99 99.9; do
        record "$name" "${sc}_p$p" "$(awk -v p="$p" -v n="$n" 'BEGIN { k = int(n * p / 100 + 0.999999); if (k < 1) k = 1 } NR == k { printf "%.1f", $1; exit }' "$WORK/lat-sorted.txt")"
      done
      read -r p n < <(awk '$1 > 1000 { if (NR != last + 1) e++; if ($1 > m) m = $1; last = NR } END { print e + 0, m + 0 }' "$us")
      record "$name" "${sc}_stalls" "$p"
      record "$name" "${sc}_stall_max_us" "$n"
    fi
    rm -f "$WORK/lat-sorted.txt"
  fi
  # Keep the statistics, drop the per-query lines (large).
  grep -v '^> ' "$lat" >"$lat.tmp" && mv "$lat.tmp" "$lat"
  return 0
}

# combine_lat name n: lat_avg/_p50/_p99/_p99.9 = medians over the repetitions; lat_stalls = sum,
# lat_stall_max_us = max.
combine_lat() {
  local name=$1 n=$2 k i v m
  for k in avg p50 p99 p99.9; do
    v=()
    for ((i = 1; i <= n; i++)); do
      m=$(get "$name" "lat_r${i}_$k")
      [[ -n $m ]] && v+=("$m")
    done
    ((${#v[@]} > 0)) || continue
    record "$name" "lat_$k" "$(median %.1f "${v[@]}")"
  done
  local stalls=0 smax=0
  for ((i = 1; i <= n; i++)); do
    v=$(get "$name" "lat_r${i}_stalls"); stalls=$(( stalls + ${v:-0} ))
    v=$(get "$name" "lat_r${i}_stall_max_us"); (( ${v:-0} > smax )) && smax=${v:-0}
  done
  record "$name" lat_stalls "$stalls"
  record "$name" lat_stall_max_us "$smax"
  if ((n > 1)); then log "  lat: median of $n runs: p99 $(get "$name" lat_p99) µs, p99.9 $(get "$name" lat_p99.9) µs; stalls > 1 ms: $stalls (longest $smax µs)"; fi
  return 0
}

# ---------------------------------------------------------------- scenarios ---------------
# MISS_REPS runs of fresh names on the running server, then stops it. 1 if the server died.
miss_runs() {
  local name=$1 r rc f
  for ((r = 1; r <= MISS_REPS; r++)); do
    f=$(miss_file "$name-$r" "$MISS_NAMES")
    measure "$name" "miss_r$r" "$WORK/out/$name-miss$r.txt" -d "$f" -n 1 -c 16 -q 500 -l "$T_MISS" -t 2
    rc=$?
    rm -f "$f"
    ((rc == 2)) && { record "$name" miss_died 1; stop_server "$name"; return 1; }
  done
  combine_reps "$name" miss "$MISS_REPS"
  stop_server "$name"
}

# A MISS run on fresh names under perf_profile (an extra run: the measured ones are not profiled).
perf_miss() {
  local f
  f=$(miss_file "perf-$1" "$MISS_NAMES")
  perf_profile "$1" miss -d "$f" -n 1 -c 16 -q 500 -l "$T_MISS" -t 2
  rm -f "$f"
}

bench_server() {
  local name=$1 f
  log "== $name"
  case $name in
    dnsdist|unbound|dnsmasq|kresd)
      local bin=$name
      command -v "$bin" >/dev/null || { record "$name" skipped "not installed"; log "  skipped: $bin not installed"; return 0; } ;;
    k8s-node-cache)
      if [[ -z ${NLD_REFERENCE_NODE_CACHE:-} || ! -x ${NLD_REFERENCE_NODE_CACHE:-} ]]; then
        record "$name" skipped "NLD_REFERENCE_NODE_CACHE unset"
        log "  SKIPPED the reference k8s-dns-node-cache: NLD_REFERENCE_NODE_CACHE is unset or not executable"
        return 0
      fi ;;
  esac

  if [[ $name == forward-floor ]]; then  # MISS only: it has no cache, so no HIT, LAT or RSS
    if ! start_server "$name" hit; then record "$name" failed "did not start"; return 1; fi
    [[ $DO_PERF == 1 ]] && perf_miss "$name"
    miss_runs "$name"
    return
  fi

  # HIT, LAT, TCP, then MISS (last: it fills the cache with names nobody asks again, and some
  # caches stop inserting when full) with the normal cache configuration.
  if ! start_server "$name" hit; then record "$name" failed "did not start"; return 1; fi
  record "$name" rss_start_kib "$(rss_kib)"
  prime "$name"
  local r rc
  # LAT first, right after the prime: with `cache 30` nothing may expire during it (a refetch
  # from the upstream inside LAT would measure a miss, not the cache).
  for ((r = 1; r <= LAT_REPS; r++)); do
    lat_run "$name" "$r"
    (($? == 2)) && { stop_server "$name"; return 1; }
  done
  combine_reps "$name" lat "$LAT_REPS"
  combine_lat "$name" "$LAT_REPS"
  # A fresh server for HIT and TCP: `cache 30` caps TTLs at 30 s, and LAT + HIT + TCP on one
  # prime take longer, so the whole working set would expire at once in the middle of a HIT
  # run (a refetch storm: misses measured as hits, and the queries of a name whose refetch the
  # upstream dropped wait for the retry, longer than dnsperf's 1 s timeout).
  stop_server "$name"
  if ! start_server "$name" hit; then record "$name" failed "did not restart for HIT"; return 1; fi
  prime "$name"
  for ((r = 1; r <= HIT_REPS; r++)); do
    measure "$name" "hit_r$r" "$WORK/out/$name-hit$r.txt" -d "$WORK/hit.txt" -c 16 -q 500 -l "$T_HIT" -t 1
    (($? == 2)) && { record "$name" hit_died 1; stop_server "$name"; return 1; }
  done
  combine_reps "$name" hit "$HIT_REPS"

  if [[ $DO_PERF == 1 && ( $name == node-cache-* || $name == reflector ) ]]; then
    prime "$name"
    perf_profile "$name" hit -d "$WORK/hit.txt" -c 16 -q 500 -l "$T_HIT" -t 1
  fi

  if [[ $DO_PERF == 1 && $name == node-cache-* ]]; then
    prime "$name"
    perf_profile "$name" tcp -m tcp -d "$WORK/hit.txt" -c 4 -q 400 -l "$T_TCP" -t 2
  fi
  prime "$name"
  measure "$name" tcp "$WORK/out/$name-tcp.txt" -m tcp -d "$WORK/hit.txt" -c 4 -q 400 -l "$T_TCP" -t 2
  (($? == 2)) && { stop_server "$name"; return 1; }

  [[ $DO_PERF == 1 && $name == node-cache-1w ]] && perf_miss "$name"
  miss_runs "$name" || return 1

  # RSS: fresh server with a cache sized for 100k names.
  if ! start_server "$name" rss; then record "$name" failed "did not start (rss config)"; return 1; fi
  sleep 1
  record "$name" rss_idle_kib "$(rss_kib)"
  record "$name" rss_idle_split "$(rss_split)"
  rss_fill "$name" 10k 10000 0
  [[ $RSS_BIG == 1 ]] && rss_fill "$name" 100k 90000 10000
  if ! server_alive; then record "$name" rss_died 1; log "  $name DIED during RSS"; fi
  stop_server "$name"
  return 0
}

START=$(date +%s)
FAILED=()
for s in "${SERVER_LIST[@]}"; do
  bench_server "$s" || FAILED+=("$s")
done
# PAIRS: the p99 and miss targets compare node-cache (1 worker) with the reflector, but the two
# were measured minutes apart above, and on this kind of machine a frozen vCPU now and then
# (bench/tail/README.md) moves one run's p99 by 10× (2026-12-03, an A/B of two commits: the
# reflector's own p99 ranged 151–3402 µs over six quick runs, the code unchanged). So both are
# measured again in alternating pairs of fresh servers (reflector, node-cache, reflector, ...):
# LAT, then a MISS run on new names (for the reflector a "miss" costs what a hit does: it has no
# upstream). The verdicts use the median of the per-pair ratios and print their range; the table
# keeps the single-run figures.
PAIR_REPS=0
case $MODE in full) PAIR_REPS=6 ;; quick) PAIR_REPS=2 ;; esac
[[ -n ${NLD_BENCH_PAIRS:-} ]] && PAIR_REPS=$NLD_BENCH_PAIRS
# ratio_of section key reps num den: the per-round ratios num/den of section's values (num and den
# are value names with @ for the round number, 1..reps), recorded in section as
# ratio_<key>_median/_min/_max/_pairs; the verdicts use the median and print the range.
ratio_of() {
  local sec=$1 key=$2 reps=$3 num=$4 den=$5 r a b ratios=()
  for ((r = 1; r <= reps; r++)); do
    a=$(get "$sec" "${den//@/$r}"); b=$(get "$sec" "${num//@/$r}")
    [[ -n $a && -n $b ]] && ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.3f", b / a }')")
  done
  ((${#ratios[@]} > 0)) || return 0
  record "$sec" "ratio_${key}_median" "$(median %.3f "${ratios[@]}")"
  record "$sec" "ratio_${key}_min" "$(printf '%s\n' "${ratios[@]}" | sort -g | head -n 1)"
  record "$sec" "ratio_${key}_max" "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -n 1)"
  record "$sec" "ratio_${key}_pairs" "${#ratios[@]}"
  log "  $sec $key: ${ratios[*]} (median $(get "$sec" "ratio_${key}_median"))"
}
if ((PAIR_REPS > 0)) && [[ ",$SERVERS," == *",reflector,"* && ",$SERVERS," == *",node-cache-1w,"* ]]; then
  # With the forward floor in the run, each round also measures its MISS between the two (a
  # triple): the floor's ratio to the reflector and node-cache's to the floor come from the same
  # minutes as the verdict's pairs.
  PAIR_SERVERS=(reflector node-cache-1w)
  [[ ",$SERVERS," == *",forward-floor,"* ]] && PAIR_SERVERS=(reflector forward-floor node-cache-1w)
  log "== pairs: p99 and miss, ${PAIR_SERVERS[*]} in $PAIR_REPS alternating rounds"
  for ((r = 1; r <= PAIR_REPS; r++)); do
    for nm in "${PAIR_SERVERS[@]}"; do
      start_server "$nm" hit || { record pairs failed "$nm did not start"; continue 2; }
      if [[ $nm != forward-floor ]]; then  # the floor has no cache: MISS only
        prime "$nm"
        lat_run "$nm" "p$r"
        record pairs "${nm}_p99_r$r" "$(get "$nm" "lat_rp${r}_p99")"
      fi
      f=$(miss_file "$nm-p$r" "$MISS_NAMES")
      measure "$nm" "miss_p$r" "$WORK/out/$nm-missp$r.txt" -d "$f" -n 1 -c 16 -q 500 -l "$T_MISS" -t 2
      rm -f "$f"
      record pairs "${nm}_miss_r$r" "$(get "$nm" "miss_p${r}_us")"
      stop_server "$nm"
    done
  done
  ratio_of pairs p99 "$PAIR_REPS" "node-cache-1w_p99_r@" "reflector_p99_r@"
  ratio_of pairs miss "$PAIR_REPS" "node-cache-1w_miss_r@" "reflector_miss_r@"
  if [[ ${PAIR_SERVERS[1]} == forward-floor ]]; then
    ratio_of pairs floor "$PAIR_REPS" "forward-floor_miss_r@" "reflector_miss_r@"
    ratio_of pairs over_floor "$PAIR_REPS" "node-cache-1w_miss_r@" "forward-floor_miss_r@"
  fi
fi

# SCALE: node-cache with -workers unset ("auto") and with 2 workers, each against 1 worker, on
# the one pinned core: HIT and TCP CPU per query, in alternating triples of fresh servers so that
# drift of the machine (other load, host steal) hits all alike; verdicts use the median of the
# per-triple ratios. Then SCALE-2CPU: the server's cpuset widened to both CPUs (dnsperf and knotd
# stay on CPU 0, so they compete with the second worker): HIT throughput and TCP CPU per query
# with 1 and 2 workers and with -workers unset (medians of 2 rounds).
SCALE_PAIRS=0
case $MODE in full) SCALE_PAIRS=4 ;; quick) SCALE_PAIRS=1 ;; esac
srv_cpus() {  # cpus: the server cpuset (cgroup modes only)
  local d
  case $CG_MODE in
    v2) echo "$1" >"${CG_JOIN[srv]}/cpuset.cpus" ;;
    v1) for d in ${CG_JOIN[srv]}; do
          if [[ -f $d/cpuset.cpus ]]; then echo "$1" >"$d/cpuset.cpus" || return 1; fi
        done ;;
    *) return 1 ;;
  esac
}
if ((SCALE_PAIRS > 0)) && [[ ",$SERVERS," == *",node-cache-1w,"* && ",$SERVERS," == *",node-cache-2w,"* ]]; then
  log "== scale: node-cache -workers unset and 2 workers vs 1 worker on one core, $SCALE_PAIRS alternating triples"
  for ((r = 1; r <= SCALE_PAIRS; r++)); do
    for w in 1w auto 2w; do
      nm=node-cache-$w
      start_server "$nm" hit || { record scale failed "$nm did not start"; continue 2; }
      record scale "workers_$w" "$(grep -o -m1 'node-cache, [0-9]* workers' "$WORK/$nm.log" | tr -dc 0-9)"
      prime "$nm"
      measure scale "${w}_r$r" "$WORK/out/scale-$w-$r.txt" -d "$WORK/hit.txt" -c 16 -q 500 -l 3 -t 1
      prime "$nm"
      measure scale "tcp${w}_r$r" "$WORK/out/scale-tcp$w-$r.txt" -m tcp -d "$WORK/hit.txt" -c 4 -q 400 -l 3 -t 2
      stop_server "$nm"
    done
  done
  ratio_of scale auto "$SCALE_PAIRS" "auto_r@_us" "1w_r@_us"
  ratio_of scale 2w "$SCALE_PAIRS" "2w_r@_us" "1w_r@_us"
  ratio_of scale tcp2w "$SCALE_PAIRS" "tcp2w_r@_us" "tcp1w_r@_us"
  if [[ $MODE == full ]] && ((CPUS >= 2)) && srv_cpus "0-$((CPUS - 1))"; then
    log "== scale-2cpu: server on CPUs 0-$((CPUS - 1)) (shared with dnsperf and knotd), HIT throughput"
    for ((r = 1; r <= 2; r++)); do
      for w in 1w 2w auto; do
        nm=node-cache-$w
        start_server "$nm" hit || { record scale2 failed "$nm did not start"; continue 2; }
        record scale2 "workers_$w" "$(grep -o -m1 'node-cache, [0-9]* workers' "$WORK/$nm.log" | tr -dc 0-9)"
        prime "$nm"
        measure scale2 "${w}_r$r" "$WORK/out/scale2-$w-$r.txt" -d "$WORK/hit.txt" -c 16 -q 500 -l 3 -t 1
        prime "$nm"
        measure scale2 "tcp${w}_r$r" "$WORK/out/scale2-tcp$w-$r.txt" -m tcp -d "$WORK/hit.txt" -c 4 -q 400 -l 3 -t 2
        stop_server "$nm"
      done
    done
    srv_cpus "$CPU_SRV"
    for w in 1w 2w auto tcp1w tcp2w tcpauto; do combine_reps scale2 "$w" 2; done
    log "  scale-2cpu: HIT q/s 1w $(get scale2 1w_qps), 2w $(get scale2 2w_qps), auto $(get scale2 auto_qps); TCP µs/q 1w $(get scale2 tcp1w_us), 2w $(get scale2 tcp2w_us)"
  fi
fi

ELAPSED=$(( $(date +%s) - START ))
log "scenarios done in ${ELAPSED}s"

# ---------------------------------------------------------------- report ------------------
# shellcheck source=bench/report.sh
source "$(dirname "${BASH_SOURCE[0]}")/report.sh" || die "cannot read bench/report.sh"

# ---------------------------------------------------------------- smoke checks ------------
if [[ $MODE == smoke ]]; then
  bad=0
  for s in "${SERVER_LIST[@]}"; do
    for sc in hit miss lat tcp; do
      a=$(get "$s" "${sc}_answered")
      if [[ -z $a || $a -le 0 ]]; then echo "SMOKE FAIL: $s $sc answered ${a:-nothing}"; bad=1; fi
      if [[ -n $(get "$s" "${sc}_died") ]]; then echo "SMOKE FAIL: $s died during $sc"; bad=1; fi
    done
    a=$(get "$s" rss_10k_kib)
    if [[ -z $a || $a -le 0 ]]; then echo "SMOKE FAIL: $s RSS not read"; bad=1; fi
    a=$(get "$s" rss_10k_answered)
    if [[ -z $a || $a -lt 9000 ]]; then echo "SMOKE FAIL: $s answered ${a:-0} of 10000 RSS-fill queries"; bad=1; fi
  done
  for s in "${SERVER_LIST[@]}"; do
    [[ $s == node-cache-* ]] || continue
    l=$(get "$s" hit_lost)
    if [[ -z $l || $l -ne 0 ]]; then echo "SMOKE FAIL: $s lost ${l:-?} queries in HIT at -q 500"; bad=1; fi
    e=$(get "$s" hit_errors)
    if [[ -z $e || $e -ne 0 ]]; then echo "SMOKE FAIL: $s gave ${e:-?} non-NOERROR answers in HIT"; bad=1; fi
  done
  ((${#FAILED[@]} == 0)) || { echo "SMOKE FAIL: servers failed: ${FAILED[*]}"; bad=1; }
  if ((bad)); then echo "bench smoke: FAILED"; exit 1; fi
  echo "bench smoke: OK"
fi
((${#FAILED[@]} == 0)) || { log "servers that failed: ${FAILED[*]}"; exit 1; }
exit 0
