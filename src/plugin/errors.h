#pragma once
// The `errors` plugin (CoreDNS plugin/errors): the line a failed query leaves in the
// log, "[ERROR] plugin/errors: <rcode> <qname> <qtype>: <error>".
//
// `consolidate DURATION REGEXP [LEVEL]` (CoreDNS semantics): an error whose text matches REGEXP
// (Go RE2 syntax, unanchored; the first matching pattern wins) is not printed but counted; the
// first one starts a timer of DURATION, after which one line
// "<n> errors like '<REGEXP>' occurred in last <DURATION>" is printed at LEVEL and the count
// starts again from zero. The count is shared by the workers; the timer runs on the loop of the
// worker that saw the first error of the period.
//
// This is the compiled stanza (the patterns and their shared counts), built with the Plan. The
// lines themselves are written by each worker's server::ErrorLog (server/errors.h), which also
// rate limits the lines that are not consolidated.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "config/corefile.h"

namespace re2 {
class RE2;
}

namespace nld::plugin {
/// One block's `errors` stanza. Immutable after construction except the pattern counts
/// (atomics); shared by every worker through the Plan.
class ErrorsPlugin {
 public:
  struct Pattern {
    std::unique_ptr<re2::RE2> re;
    std::string text;  // the REGEXP as written
    std::chrono::milliseconds period{0};
    std::string period_text;  // "30s", "5m0s"
    log::Level level = log::Level::kError;
    std::atomic<uint64_t> count{0};  // errors matched in the current period
  };

  /// Throws std::runtime_error for a pattern RE2 rejects (the config layer has checked it
  /// already, with file:line) or an unknown level.
  explicit ErrorsPlugin(const config::ErrorsConfig& cfg);
  ~ErrorsPlugin();
  ErrorsPlugin(const ErrorsPlugin&) = delete;
  ErrorsPlugin& operator=(const ErrorsPlugin&) = delete;

  /// The first pattern whose REGEXP matches `error` (unanchored, like Go's MatchString), or
  /// nullptr. Any thread.
  Pattern* match(std::string_view error) const;
  size_t patterns() const { return patterns_.size(); }

 private:
  std::vector<std::unique_ptr<Pattern>> patterns_;
};

}  // namespace nld::plugin
