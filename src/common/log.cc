#include "common/log.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <iterator>

namespace nld::log {
namespace {

std::atomic<int> g_min_level{static_cast<int>(Level::kInfo)};

// CoreDNS prints levels as INFO, WARNING, ERROR, DEBUG.
std::string_view levelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "DEBUG";
    case Level::kInfo:
      return "INFO";
    case Level::kWarning:
      return "WARNING";
    case Level::kError:
      return "ERROR";
  }
  return "INFO";
}

void emit(const fmt::memory_buffer& line) {
  // One locked fwrite + fflush per line: lines of concurrent threads never interleave, and the
  // order against other stdio output on stdout is kept (the buffer is flushed at each line).
  flockfile(stdout);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
  funlockfile(stdout);
}

}  // namespace

void init(bool quiet) {
  g_min_level.store(static_cast<int>(quiet ? Level::kWarning : Level::kInfo),
                    std::memory_order_relaxed);
}

bool enabled(Level level) noexcept {
  return static_cast<int>(level) >= g_min_level.load(std::memory_order_relaxed);
}

namespace detail {

void write(Level level, fmt::string_view format, fmt::format_args args) noexcept {
  try {
    fmt::memory_buffer line;  // 500 bytes inline: a typical line does not allocate
    const std::string_view name = levelName(level);
    line.push_back('[');
    line.append(name.data(), name.data() + name.size());
    line.append(std::string_view("] "));
    fmt::vformat_to(std::back_inserter(line), format, args);
    line.push_back('\n');
    emit(line);
  } catch (const std::exception& e) {
    // fmt throws only on runtime-checked specs (e.g. a dynamic width) or on allocation failure.
    try {
      fmt::memory_buffer line;
      fmt::format_to(std::back_inserter(line), "[ERROR] log: cannot format '{}': {}\n",
                     std::string_view(format.data(), format.size()), e.what());
      emit(line);
    } catch (...) {
    }
  }
}

}  // namespace detail
}  // namespace nld::log
