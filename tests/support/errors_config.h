#pragma once
// One `errors { consolidate PERIOD PATTERN [LEVEL] }` line as the Corefile parser would build
// it, for the tests of the errors plugin's patterns (tests/plugin) and of its output
// (tests/server), without going through a Corefile.
#include <chrono>
#include <string>
#include <utility>

#include "config/corefile.h"

namespace nld::test {

/// `text` is the period as CoreDNS prints it ("1s", "50ms"); `level` one of warning | error |
/// info | debug (anything else is for the plugin to refuse).
inline config::ErrorsConsolidate consolidate(std::string pattern, std::chrono::milliseconds period,
                                             std::string text, std::string level = "error") {
  config::ErrorsConsolidate c;
  c.pattern = std::move(pattern);
  c.period = period;
  c.period_text = std::move(text);
  c.level = std::move(level);
  return c;
}

}  // namespace nld::test
