#pragma once
// Go's time.ParseDuration and Duration.String, and strconv.Quote (ASCII subset), hand-written so
// that node-cache and the controller accept and print durations and quoted values byte for byte
// like the Go binaries they replace. The one implementation for flags and the Corefile.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace nld {

/// Parses a Go duration ("300ms", "-1.5h", "1h2m3.5s", "0") exactly like time.ParseDuration.
/// On failure returns nullopt and, if `error` is given, Go's message (e.g.
/// `time: missing unit in duration "5"`).
std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view text,
                                                        std::string* error = nullptr);

/// Formats like Go's time.Duration.String(): "1m0s", "300ms", "1.5s", "1.5\u00b5s", "0s".
std::string formatGoDuration(std::chrono::nanoseconds d);

/// Quotes like Go's %q / strconv.Quote for the ASCII subset ("a\"b" -> "\"a\\\"b\"").
std::string goQuote(std::string_view text);

}  // namespace nld
