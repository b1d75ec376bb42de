#!/usr/bin/env bash
# Sets up, builds and runs every test: the unit tests under ASan+UBSan, then the whole suite
# (unit, fuzz-corpus replay, integration with real DNS servers, OVSDB, network namespaces) on the
# regular build. Output ends with ctest's summary of the full suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

echo "== sanitizer build (ASan+UBSan): unit tests"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNLD_SANITIZE=ON -DNLD_UNIT_ONLY=ON \
  -DNLD_WERROR=ON >/dev/null
cmake --build build/asan -j "$jobs"
ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan -L unit -j "$jobs" --output-on-failure

echo "== sanitizer build (ASan+UBSan): node-cache against real DNS servers (integration, reload under load)"
cmake -S . -B build/asan-sys -G Ninja -DCMAKE_BUILD_TYPE=Debug -DNLD_SANITIZE=ON -DNLD_WERROR=ON >/dev/null
cmake --build build/asan-sys -j "$jobs" --target node-cache
# abort_on_error: a sanitizer report kills node-cache, which the tests see as a failure.
ASAN_OPTIONS=abort_on_error=1:detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan-sys -R '^(integ_(positive|negative|truncation|transport|upstream_down|malformed|coalescing|policy|refused)|reload_under_load)$' \
  --output-on-failure

echo "== regular build: every test"
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLD_WERROR=ON >/dev/null
cmake --build build/release -j "$jobs"
ctest --test-dir build/release -j "$jobs" --output-on-failure "$@"
