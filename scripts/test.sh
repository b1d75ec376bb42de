#!/usr/bin/env bash
# Sets up, lints (scripts/lint.sh: clang-tidy over src/), builds and runs every test: the unit
# tests under ASan+UBSan, node-cache under ASan against real DNS servers, the unit tests and
# reload-under-load under ThreadSanitizer, every libFuzzer target for a bounded time
# (scripts/fuzz.sh, NLD_FUZZ_SECONDS each), then the whole suite (unit, fuzz-corpus replay,
# integration with real DNS servers, OVSDB, network namespaces) on the regular build. Output ends
# with ctest's summary of the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== lint: clang-tidy (naming dialect, bug checks) over src/, clang-format over the tree"
# clang-tidy over tests/ fuzz/ bench/ is clean too but would more than double the step (see
# scripts/lint.sh); clang-format is seconds, so it covers src/ tests/ fuzz/ bench/.
NLD_LINT_JOBS=$jobs bash scripts/lint.sh

echo "== sanitizer build (ASan+UBSan): unit tests"
# One build dir for the unit tests and the node-cache of the next step (NLD_UNIT_ONLY off only
# registers the system tests; compiling the tree twice under ASan cost ~3 minutes of CI).
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNLD_SANITIZE=ON -DNLD_UNIT_ONLY=OFF \
  -DNLD_WERROR=ON >/dev/null
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan -L unit -j "$jobs" --output-on-failure

echo "== sanitizer build (ASan+UBSan): node-cache against real DNS servers (integration, reload under load)"
# abort_on_error: a sanitizer report kills node-cache, which the tests see as a failure.
ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan -R '^(integ_(positive|negative|truncation|transport|upstream_down|malformed|coalescing|policy|refused|warm_restart)|reload_under_load)$' \
  --output-on-failure

echo "== ThreadSanitizer build: unit tests (event loops, workers and hand-offs, metrics, HTTP, config sync), node-cache through reloads under load"
# One build dir for both (NLD_UNIT_ONLY off only registers the system tests). tsan.supp lists
# third-party false positives only; halt_on_error turns the first report into a failure.
tsan_options="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLD_TSAN=ON -DNLD_UNIT_ONLY=OFF \
  -DNLD_BENCH=OFF -DNLD_WERROR=ON >/dev/null
cmake --build build/tsan -j "$jobs"
TSAN_OPTIONS=$tsan_options ctest --test-dir build/tsan -L unit -j "$jobs" --output-on-failure
# abort_on_error: a race report kills node-cache, which the test sees as a failure.
TSAN_OPTIONS=$tsan_options:abort_on_error=1 \
  ctest --test-dir build/tsan -R '^reload_under_load$' --output-on-failure

echo "== fuzzing: every libFuzzer target, ${NLD_FUZZ_SECONDS:-30} s each"
bash scripts/fuzz.sh

# The real k8s-dns-node-cache (../shared/reference, never shipped) for the tests that compare
# against it; they report themselves skipped when NLD_REFERENCE_NODE_CACHE is unset.
if [[ -z ${NLD_REFERENCE_NODE_CACHE:-} ]]; then
  for ref in "${NLD_REFERENCE_DIR:-$PWD/../shared/reference}" /work/shared/reference; do
    xz_file=$ref/k8s-dns-node-cache-1.22.18.xz
    [[ -f $xz_file ]] || continue
    mkdir -p build/reference
    if [[ ! -x build/reference/node-cache ]]; then
      xz -dkc "$xz_file" >build/reference/node-cache.tmp
      chmod +x build/reference/node-cache.tmp
      mv build/reference/node-cache.tmp build/reference/node-cache
    fi
    export NLD_REFERENCE_NODE_CACHE=$PWD/build/reference/node-cache
    echo "== reference k8s-dns-node-cache: $NLD_REFERENCE_NODE_CACHE (from $xz_file)"
    break
  done
fi

echo "== regular build: every test"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLD_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
ctest --test-dir build/release -j "$jobs" --output-on-failure "$@"
