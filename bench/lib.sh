# Shell helpers shared by the benchmark scripts (bench/run.sh, bench/dashboard_views.sh).
# Source it; the caller defines log() (one line to stderr), nsexec() (runs "$@" in its network
# namespace) and the associative array PIDS (pids it started and has not reaped yet).

stop_pid() {  # pid: TERM, wait ≤5 s (a zombie counts as gone), KILL, reap
  local pid=$1 i state
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; unset "PIDS[$pid]"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 50; i++)); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || break
    [[ $state == Z ]] && break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  unset "PIDS[$pid]"
  return 0
}

wait_answer() {  # addr port name tries(0.2 s each) [pid] -> 0 when a NOERROR answer comes back
  local addr=$1 port=$2 name=$3 tries=$4 pid=${5:-} i
  for ((i = 0; i < tries; i++)); do
    if [[ -n $pid ]] && { ! kill -0 "$pid" 2>/dev/null || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; }; then
      wait "$pid" 2>/dev/null
      log "process $pid exited (status $?) before answering"
      return 1
    fi
    if nsexec dig +tries=1 +time=1 +retry=0 -p "$port" "@$addr" "$name" A 2>/dev/null |
        grep -q 'status: NOERROR'; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

# knot_conf dir addr port zone... : writes dir/knot.conf for a one-worker knotd serving
# dir/zones/<zone>.zone for each zone on addr@port (storage, rundir and database under dir).
knot_conf() {
  local dir=$1 addr=$2 port=$3 z
  shift 3
  mkdir -p "$dir/zones" "$dir/db" "$dir/run"
  {
    cat <<EOC
server:
    rundir: $dir/run
    listen: $addr@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: $dir/db
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $dir/zones
zone:
EOC
    for z in "$@"; do printf '  - domain: %s\n    file: %s.zone\n' "$z" "$z"; done
  } >"$dir/knot.conf"
}

# field outfile key -> number after "key:" in dnsperf's statistics
perf_field() { awk -v k="$2" 'index($0, k ":") { sub(".*" k ":[ \t]*", ""); print $1 + 0; exit }' "$1"; }
noerror_count() { awk '/Response codes:/ { for (i = 1; i <= NF; i++) if ($i == "NOERROR") { print $(i + 1) + 0; exit } } END {}' "$1"; }
