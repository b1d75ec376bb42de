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
// Ours, on purpose: lines that are not consolidated are rate limited per worker (a token bucket,
// ErrorLog::Limits), because one line per failed query turns a flood of failures into a flood of
// log lines (CoreDNS printed 800k lines in 60 s in the blackhole scenario of issue 11): each line
// costs a write system call and the log collector's work. Suppressed lines are counted
// (nodelocaldns_log_lines_suppressed_total) and summed up once a second in a WARNING line.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "config/corefile.h"
#include "dns/name.h"
#include "net/event_loop.h"

namespace re2 {
class RE2;
}

namespace nld::server {

class ServerMetrics;

/// One block's `errors` stanza. Immutable after construction except the pattern counts
/// (atomics); shared by every worker through the Plan.
class ErrorsPlugin {
 public:
  struct Pattern {
    std::unique_ptr<re2::RE2> re;
    std::string text;         // the REGEXP as written
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

/// The errors plugin's output of one worker. Loop thread only.
class ErrorLog {
 public:
  /// Token bucket on the lines that are not consolidated: `burst` lines at once, refilled at
  /// `per_second`; the suppressed ones are summed up in one line per `summary` period.
  struct Limits {
    double per_second = 100;
    double burst = 100;
    std::chrono::milliseconds summary{1000};
  };

  /// `metrics` may be null (tests).
  ErrorLog(net::EventLoop& loop, ServerMetrics* metrics, Limits limits);
  ErrorLog(net::EventLoop& loop, ServerMetrics* metrics) : ErrorLog(loop, metrics, Limits{}) {}
  ~ErrorLog();
  ErrorLog(const ErrorLog&) = delete;
  ErrorLog& operator=(const ErrorLog&) = delete;

  /// A query answered with `rcode` because of `error`: consolidated by one of `plugin`'s
  /// patterns, or printed as "plugin/errors: <rcode> <qname> <qtype>: <error>" within the rate
  /// limit. `plugin` may be null (no consolidation).
  void report(const std::shared_ptr<ErrorsPlugin>& plugin, uint8_t rcode, const dns::Name& qname,
              uint16_t qtype, std::string_view error);

  /// Lines printed / suppressed by the rate limit so far (for tests).
  uint64_t printed() const { return printed_; }
  uint64_t suppressed() const { return suppressed_total_; }

 private:
  bool takeToken();
  void summarise();

  net::EventLoop& loop_;
  ServerMetrics* metrics_;
  Limits limits_;
  double tokens_;
  net::Clock::time_point refilled_;
  uint64_t printed_ = 0;
  uint64_t suppressed_ = 0;  // since the last summary line
  uint64_t suppressed_total_ = 0;
  net::EventLoop::TimerId summary_timer_ = 0;
};

}  // namespace nld::server
