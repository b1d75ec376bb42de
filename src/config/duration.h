#pragma once
// Go time.ParseDuration syntax ("30s", "1m", "1h30m", "500ms", "1.5h", "0"). Internal to
// nld::config. Hand-written: the format is tiny and no C++ library parses Go durations.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace nld::config::detail {

/// Parses a Go duration. std::nullopt on syntax error or overflow (> ~292 years).
std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view s);

/// Renders a duration the way Go's Duration.String() does for whole milliseconds and above
/// ("1h30m0s", "500ms", "0s"); used in messages and dump().
std::string formatDuration(std::chrono::nanoseconds d);

}  // namespace nld::config::detail
