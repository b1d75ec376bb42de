#!/usr/bin/env bash
# Static checks of the C++ tree:
#   * clang-tidy-14 with the repository's .clang-tidy: the naming dialect
#     (readability-identifier-naming) and a few cheap bug checks, every finding an error;
#   * clang-format-14 --dry-run --Werror with .clang-format.
#
# clang-tidy needs compile commands, not objects: the script configures a build directory of its
# own with clang-14 and CMAKE_EXPORT_COMPILE_COMMANDS (nothing is compiled; the tree has no
# generated headers). Headers are checked through the translation units that include them
# (.clang-tidy's HeaderFilterRegex keeps system headers out), and each finding in a header is
# printed once in the summary although every including unit reports it.
#
# Usage: scripts/lint.sh [--fix] [file-regex ...]
#   --fix        apply clang-tidy's fixes (the naming check renames a declaration and every use in
#                the units it sees; review the diff, rebuild, and rerun the script)
#   file-regex   check only the source files whose path matches. Default: clang-tidy over src/
#                (76 units: 6.0 CPU-minutes, about 3 min with -j2 on the idle 2-core CI machine;
#                measured 2026-12-04), which scripts/test.sh runs. tests/ fuzz/ bench/ (109 units,
#                gtest-heavy) cost about 8.5 CPU-minutes more, which would take the CI step past
#                its 3.5-minute budget: run them with `scripts/lint.sh /tests/ /fuzz/ /bench/`
#                after renaming anything. clang-format: over src/ tests/ fuzz/ bench/
# Environment:
#   NLD_LINT_TIDY    1 (default): run clang-tidy; 0: skip it
#   NLD_LINT_FORMAT  1 (default): run the clang-format check; 0: skip it
#   NLD_LINT_JOBS    clang-tidy processes at once (default 2: the CI machine has two cores)
#   NLD_LINT_BUILD   build directory for compile_commands.json (default build/lint)
set -euo pipefail
cd "$(dirname "$0")/.."

tidy_on=${NLD_LINT_TIDY:-1}
format_on=${NLD_LINT_FORMAT:-1}
jobs=${NLD_LINT_JOBS:-2}
build=${NLD_LINT_BUILD:-build/lint}

fix=0
filters=()
for arg in "$@"; do
  case $arg in
    --fix) fix=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) filters+=("$arg") ;;
  esac
done
# Regexes on the file's path with a leading slash (run-clang-tidy matches absolute paths).
tidy_scope='/src/'
format_scope='^/(src|tests|fuzz|bench)/'
if ((${#filters[@]})); then
  tidy_scope=$(IFS='|'; echo "${filters[*]}")
  format_scope=$tidy_scope
fi

status=0

run_tidy() {
  echo "== clang-tidy (.clang-tidy) over files matching: $tidy_scope"
  # Configure only. clang-14, as the fuzz build: the compile commands then carry clang's own
  # flags, exactly what clang-tidy parses. Bench sources need Google Benchmark's package only.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DNLD_BENCH=ON >/dev/null
  local log=$build/clang-tidy.log
  local args=(-p "$build" -j "$jobs" -quiet)
  ((fix)) && args+=(-fix)
  local rc=0
  run-clang-tidy-14 "${args[@]}" "$tidy_scope" >"$log" 2>&1 || rc=$?
  # A finding is "path:line:col: error: message [check]"; a header's findings repeat once per
  # including unit: print each once.
  local findings
  findings=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
             grep -E '^/.*:[0-9]+:[0-9]+: (error|warning): .*\[[a-z0-9.,-]+\]$' |
             sed "s|^$PWD/||" | sort -u || true)
  if [[ -n $findings ]]; then
    echo "$findings"
    echo "clang-tidy: $(wc -l <<<"$findings") distinct findings (full output: $log)"
  fi
  if ((rc != 0)); then
    [[ -n $findings ]] || tail -n 40 "$log"
    echo "clang-tidy: FAILED"
    status=1
  else
    echo "clang-tidy: clean"
  fi
}

# Separate from clang-tidy and switchable (NLD_LINT_FORMAT=0). The tree was formatted in one
# commit (2026-12-04); this check keeps it so.
run_format() {
  echo "== clang-format (.clang-format) over files matching: $format_scope"
  local files=()
  mapfile -t files < <(git ls-files -- '*.cc' '*.h' '*.cpp' '*.hpp' |
                       grep -E '^(src|tests|fuzz|bench)/' | sed 's|^|/|' | grep -E "$format_scope" |
                       sed 's|^/||')
  if ((${#files[@]} == 0)); then
    echo "clang-format: no files match"
    return
  fi
  local bad=()
  local f
  for f in "${files[@]}"; do
    clang-format-14 --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    printf '%s\n' "${bad[@]}"
    echo "clang-format: ${#bad[@]} of ${#files[@]} files are not formatted" \
         "(see the diff: clang-format-14 --dry-run <file>; fix: clang-format-14 -i <file>)"
    status=1
  else
    echo "clang-format: ${#files[@]} files formatted"
  fi
}

[[ $tidy_on == 1 ]] && run_tidy
[[ $format_on == 1 ]] && run_format
exit "$status"
