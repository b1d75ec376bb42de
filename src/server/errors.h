#pragma once
// The `errors` plugin's output of one worker (CoreDNS plugin/errors): the line a failed query
// leaves in the log, "[ERROR] plugin/errors: <rcode> <qname> <qtype>: <error>", or its count
// in a `consolidate` pattern of the block's plugin::ErrorsPlugin (plugin/errors.h, compiled
// with the Plan).
//
// Ours, on purpose: lines that are not consolidated are rate limited per worker (a token bucket,
// ErrorLog::Limits), because one line per failed query turns a flood of failures into a flood of
// log lines (CoreDNS printed 800k lines in 60 s in the blackhole scenario of issue 11): each line
// costs a write system call and the log collector's work. Suppressed lines are counted
// (nodelocaldns_log_lines_suppressed_total) and summed up once a second in a WARNING line.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "dns/name.h"
#include "net/event_loop.h"
#include "plugin/errors.h"

namespace nld::server {

class ServerMetrics;

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
  void report(const std::shared_ptr<plugin::ErrorsPlugin>& plugin, uint8_t rcode,
              const dns::Name& qname, uint16_t qtype, std::string_view error);

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
