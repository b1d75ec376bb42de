#!/usr/bin/env bash
# Exact user-space profiles of node-cache for docs/benchmarks.md (issue 6): callgrind over cache
# hits and over misses, and strace -c system-call counts over misses. Needs root (netns).
#
# Usage: bench/profile.sh [OUT_DIR]   (default: build-bench/bench-profile)
#   OUT_DIR/callgrind-hit.txt, callgrind-miss.txt: callgrind_annotate of the worker thread
#     (self and inclusive), with instructions per query in the first line;
#   OUT_DIR/strace-miss.txt: strace -c -f over MISS queries, with calls per query.
# Environment: NLD_BUILD_DIR (default <source>/build-bench), NLD_SOURCE_DIR;
#   NLD_PROFILE_MODES (default "hit miss strace": which of the three runs to do);
#   NLD_PROFILE_RAW=1 also keeps the worker's raw callgrind file as OUT/callgrind-MODE.out
#   (for `callgrind_annotate --tree=caller`: who calls malloc, clock_gettime, ...).
#
# Everything runs on 127.0.0.x inside a private network namespace that is deleted at exit; every
# process started is killed at exit (trap), also on failure.
set -uo pipefail

SRC_DIR=${NLD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${NLD_BUILD_DIR:-$SRC_DIR/build-bench}
NODE_CACHE=$BUILD_DIR/src/cmd/node-cache/node-cache
OUT=${1:-$BUILD_DIR/bench-profile}
HIT_QUERIES=200000
MISS_QUERIES=40000
STRACE_QUERIES=20000

die() { printf '[profile] FATAL: %s\n' "$*" >&2; exit 1; }
log() { printf '[profile] %s\n' "$*" >&2; }
[[ $(id -u) -eq 0 ]] || die "must run as root"
for t in ip knotd dnsperf valgrind callgrind_annotate strace; do
  command -v "$t" >/dev/null || die "$t not found"
done
[[ -x $NODE_CACHE ]] || die "node-cache not found at $NODE_CACHE"
mkdir -p "$OUT" || die "cannot create $OUT"

NS=nld-prof-$$
WORK=$(mktemp -d /tmp/nld-prof.XXXXXX)
declare -A PIDS=()
cleanup() {
  local pid i
  trap - EXIT INT TERM
  for pid in "${!PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  ip netns del "$NS" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || die "cannot create namespace"
ip -n "$NS" link set lo up
mkdir -p "$WORK/z" "$WORK/db" "$WORK/run"
printf '$ORIGIN bench.example.\n$TTL 3600\n@ SOA ns hostmaster 1 3600 900 604800 300\n@ NS ns\nns A 127.0.0.2\n* A 192.0.2.1\n' \
  >"$WORK/z/bench.example.zone"
cat >"$WORK/knot.conf" <<EOF
server:
    rundir: $WORK/run
    listen: 127.0.0.2@53
    udp-workers: 1
database:
    storage: $WORK/db
template:
  - id: default
    storage: $WORK/z
zone:
  - domain: bench.example
    file: bench.example.zone
EOF
printf '.:5300 {\n    bind 127.0.0.1\n    cache 30\n    forward . 127.0.0.2:53\n}\n' >"$WORK/Corefile"
awk 'BEGIN { for (i = 0; i < 1000; i++) printf "h%d.hit.bench.example A\n", i }' >"$WORK/hit.txt"

ip netns exec "$NS" knotd -c "$WORK/knot.conf" >"$WORK/knot.log" 2>&1 &
PIDS[$!]=1
sleep 1

nc_args=(-conf "$WORK/Corefile" -localip 127.0.0.1 -setupinterface=false -setupiptables=false
         -workers 1 -metrics-listen-address 127.0.0.1:9353 -statedir=)
perf_q() { ip netns exec "$NS" dnsperf -s 127.0.0.1 -p 5300 "$@"; }
wait_up() {  # pid: until node-cache answers (≤ 30 s: valgrind starts slowly)
  local i
  for ((i = 0; i < 150; i++)); do
    kill -0 "$1" 2>/dev/null || die "node-cache exited: $(tail -n 5 "$WORK/nc.log")"
    ip netns exec "$NS" dig +tries=1 +time=1 -p 5300 @127.0.0.1 up.hit.bench.example 2>/dev/null |
      grep -q 'status: NOERROR' && return 0
    sleep 0.2
  done
  die "node-cache did not answer"
}
stop() {  # pid
  kill -TERM "$1" 2>/dev/null
  local i
  for ((i = 0; i < 100; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  wait "$1" 2>/dev/null
  unset "PIDS[$1]"
}

# callgrind run: mode hit|miss -> OUT/callgrind-MODE.txt
callgrind_run() {
  local mode=$1 cg=$WORK/cg-$1.out
  ip netns exec "$NS" valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$cg" \
    "$NODE_CACHE" "${nc_args[@]}" >"$WORK/nc.log" 2>&1 &
  local pid=$!
  PIDS[$pid]=1
  wait_up "$pid"
  local n
  if [[ $mode == hit ]]; then
    perf_q -d "$WORK/hit.txt" -n 1 -q 20 >/dev/null
    perf_q -d "$WORK/hit.txt" -n $((HIT_QUERIES / 1000)) -c 8 -q 100 -l 120 >"$WORK/dnsperf.txt"
  else
    awk -v n=$MISS_QUERIES 'BEGIN { for (i = 0; i < n; i++) printf "c%d.miss.bench.example A\n", i }' >"$WORK/miss.txt"
    perf_q -d "$WORK/miss.txt" -n 1 -c 8 -q 50 -Q 4000 -l 120 >"$WORK/dnsperf.txt"
  fi
  n=$(awk '/Queries completed:/ { print $3 }' "$WORK/dnsperf.txt")
  stop "$pid"
  # The busiest thread is the worker.
  local f best="" bestn=0 ir
  for f in "$cg"-*; do
    ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    if [[ -n $ir && $ir -gt $bestn ]]; then best=$f; bestn=$ir; fi
  done
  [[ -n $best ]] || die "no callgrind output"
  {
    echo "worker thread: $bestn instructions over $n answered $mode queries = $((bestn / (n > 0 ? n : 1))) per query"
    echo "== self"
    callgrind_annotate "$best" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,40p'
    echo "== inclusive"
    callgrind_annotate --inclusive=yes "$best" 2>/dev/null | sed -n '/file:function/,$p' | sed -n '3,45p'
  } | cut -c1-220 >"$OUT/callgrind-$mode.txt"
  [[ ${NLD_PROFILE_RAW:-0} == 1 ]] && cp "$best" "$OUT/callgrind-$mode.out"
  log "callgrind $mode: $OUT/callgrind-$mode.txt ($((bestn / (n > 0 ? n : 1))) instructions/query)"
}

MODES=" ${NLD_PROFILE_MODES:-hit miss strace} "
[[ $MODES == *" hit "* ]] && callgrind_run hit
[[ $MODES == *" miss "* ]] && callgrind_run miss
[[ $MODES == *" strace "* ]] || exit 0

# strace -c over misses.
ip netns exec "$NS" "$NODE_CACHE" "${nc_args[@]}" >"$WORK/nc.log" 2>&1 &
pid=$!
PIDS[$pid]=1
wait_up "$pid"
awk -v n=$STRACE_QUERIES 'BEGIN { for (i = 0; i < n; i++) printf "s%d.miss.bench.example A\n", i }' >"$WORK/smiss.txt"
strace -c -f -p "$pid" -o "$WORK/strace.txt" &
spid=$!
PIDS[$spid]=1
sleep 0.5
perf_q -d "$WORK/smiss.txt" -n 1 -c 16 -q 200 -t 2 -l 60 >"$WORK/dnsperf.txt"
kill -INT "$spid"
wait "$spid" 2>/dev/null
unset "PIDS[$spid]"
stop "$pid"
n=$(awk '/Queries completed:/ { print $3 }' "$WORK/dnsperf.txt")
{
  echo "strace -c -f over $n answered MISS queries (calls/query in the last column)"
  awk -v n="$n" '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ {
      calls = $4; name = $NF; printf "%-20s %10d calls %8.2f per query\n", name, calls, calls / n }' "$WORK/strace.txt"
} >"$OUT/strace-miss.txt"
log "strace: $OUT/strace-miss.txt"
