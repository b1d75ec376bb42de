#pragma once
// Go's time.ParseDuration and Duration.String, and strconv.Quote (ASCII subset), hand-written so
// that node-cache and the controller accept and print durations and quoted values byte for byte
// like the Go binaries they replace. The one implementation for flags and the Corefile.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace nld {

/// Parses a Go duration ("300ms", "-1.5h", "1h2m3.5s", "0") exactly like time.ParseDuration.
/// On failure the error is Go's message (e.g. `time: missing unit in duration "5"`).
Result<std::chrono::nanoseconds> parseGoDuration(std::string_view text);

/// Formats like Go's time.Duration.String(): "1m0s", "300ms", "1.5s", "1.5\u00b5s", "0s".
std::string formatGoDuration(std::chrono::nanoseconds d);

/// Quotes like Go's %q / strconv.Quote for the ASCII subset ("a\"b" -> "\"a\\\"b\"").
std::string goQuote(std::string_view text);

}  // namespace nld

namespace nld {

/// A Go text/template restricted to the actions the answers of CoreDNS's `template` plugin use:
/// {{ .Name }}, {{ .Zone }}, {{ .Class }}, {{ .Type }}, {{ .Remote }}, {{ index .Match N }},
/// {{ .Group.NAME }} and {{ index .Group "NAME" }} (spaces optional, `{{-`/`-}}` trim markers as
/// Go). Anything else (pipelines, functions, .Message, .Question, .Meta, if/range...) is refused
/// by compile() with a message naming the action, never silently ignored.
class GoTemplate {
 public:
  struct Data {
    std::string_view name, zone, cls, type, remote;
    std::vector<std::string> match;                          // [0] = the whole match
    std::vector<std::pair<std::string, std::string>> group;  // named groups
  };
  static Result<GoTemplate> compile(std::string_view text);
  /// The text with the actions substituted; an error when Go's Execute fails (an index out of
  /// range), with Go's message.
  Result<std::string> execute(const Data& d) const;

 private:
  struct Part {
    enum class Kind : uint8_t { kText, kName, kZone, kClass, kType, kRemote, kMatch, kGroup } kind;
    std::string text;  // Text: the text; Group: the group's name
    size_t index = 0;  // Match
  };
  std::vector<Part> parts_;
};

}  // namespace nld
