#pragma once
// Logging in CoreDNS's format: "[INFO] message", "[ERROR] plugin/forward: ...", written to stdout.
// Thin wrapper over spdlog so every binary and module logs the same way.
#include <spdlog/spdlog.h>

#include <string_view>

namespace nld::log {

/// Configures the process-wide logger: stdout, pattern "[LEVEL] msg". Call once from main.
/// @param quiet suppresses INFO (CoreDNS -quiet).
void init(bool quiet = false);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::info(f, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::warn(f, std::forward<Args>(args)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::error(f, std::forward<Args>(args)...);
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  spdlog::debug(f, std::forward<Args>(args)...);
}

}  // namespace nld::log
