#!/usr/bin/env bash
# System test of bench/tail/freeze-detect: bad arguments are refused with status 2, and a short
# run (SCHED_FIFO when root, else --no-fifo) prints its summary with the time it observed.
# Env: NLD_BUILD_DIR (set by ctest). Runs ~2 s on CPU 0; starts nothing that outlives it.
set -uo pipefail
BIN=${NLD_BUILD_DIR:?NLD_BUILD_DIR not set}/bench/tail/freeze-detect
[[ -x $BIN ]] || { echo "FAIL: $BIN not built"; exit 1; }
fail=0
for args in "--cpu x" "--seconds -1" "--bogus" "--seconds"; do
  # shellcheck disable=SC2086
  timeout 10 "$BIN" $args >/dev/null 2>&1
  rc=$?
  if ((rc != 2)); then echo "FAIL: freeze-detect $args exited $rc, expected 2"; fail=1; fi
done
fifo=()
[[ $(id -u) -eq 0 ]] || fifo=(--no-fifo)
out=$(timeout 20 "$BIN" --cpu 0 --seconds 1.5 --threshold-us 100000 --burst-ms 10 "${fifo[@]}")
rc=$?
if ((rc != 0)); then echo "FAIL: short run exited $rc: $out"; fail=1; fi
summary=$(grep '^cpu=0 observed_s=' <<<"$out")
if [[ -z $summary ]]; then
  echo "FAIL: no summary line in: $out"; fail=1
else
  # 10 ms on / 10 ms off for 1.5 s: about 0.75 s observed; a broken loop gives ~0 or > 1.5.
  if ! awk -v s="$summary" 'BEGIN { split(s, f, /[ =]/); o = f[4] + 0; exit !(o > 0.3 && o <= 1.6) }'; then
    echo "FAIL: implausible observed time: $summary"; fail=1
  fi
  echo "$summary"
fi
((fail == 0)) && echo "freeze-detect test: OK"
exit "$fail"
