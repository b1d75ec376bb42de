#pragma once
// Logging in CoreDNS's format: "[INFO] message", "[ERROR] plugin/forward: ...", one line per call
// on stdout, flushed at once. Every binary and module logs through this.
//
// Hand-written on fmt instead of spdlog: Debian ships spdlog only as a shared library, which maps
// libspdlog, libfmt and libstdc++ into every process (about 1.5 MiB of node-cache's idle RSS), and
// spdlog's header-only mode still links ~100 KiB of registry, pattern-formatter and sink code. All
// we need is one fixed line layout, a level threshold and a flush per line.
#include <fmt/core.h>

#include <string_view>

namespace nld::log {

enum class Level : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

/// Configures the process-wide logger: INFO and above (WARNING and above when `quiet`, CoreDNS
/// -quiet). DEBUG lines are never printed. Call once from main; any thread may log before it.
void init(bool quiet = false);

/// True when lines of `level` are printed. Any thread.
bool enabled(Level level) noexcept;

namespace detail {
/// Formats and writes one line "[LEVEL] text\n" to stdout, flushed. Any thread; lines from
/// concurrent callers never interleave. Never throws: a formatting error prints an ERROR line.
void write(Level level, fmt::string_view format, fmt::format_args args) noexcept;
}  // namespace detail

/// Logs one INFO line; `f` is checked at compile time. Any thread.
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kInfo)) detail::write(Level::kInfo, f, fmt::make_format_args(args...));
}
/// Logs one WARNING line. Any thread.
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kWarning)) detail::write(Level::kWarning, f, fmt::make_format_args(args...));
}
/// Logs one ERROR line. Any thread.
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kError)) detail::write(Level::kError, f, fmt::make_format_args(args...));
}
/// Logs one DEBUG line (dropped unless DEBUG is enabled; it never is today). Any thread.
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::kDebug)) detail::write(Level::kDebug, f, fmt::make_format_args(args...));
}

}  // namespace nld::log
