#include "server/errors.h"

#include <algorithm>

#include "common/log.h"
#include "server/metrics.h"

namespace nld::server {
namespace {

using plugin::ErrorsPlugin;

void logAt(log::Level level, uint64_t n, const ErrorsPlugin::Pattern& p) {
  constexpr auto kFormat = "plugin/errors: {} errors like '{}' occurred in last {}";
  switch (level) {
    case log::Level::kError:
      log::error(kFormat, n, p.text, p.period_text);
      break;
    case log::Level::kWarning:
      log::warn(kFormat, n, p.text, p.period_text);
      break;
    case log::Level::kInfo:
      log::info(kFormat, n, p.text, p.period_text);
      break;
    case log::Level::kDebug:
      log::debug(kFormat, n, p.text, p.period_text);
      break;
  }
}

}  // namespace

ErrorLog::ErrorLog(net::EventLoop& loop, ServerMetrics* metrics, Limits limits)
    : loop_(loop),
      metrics_(metrics),
      limits_(limits),
      tokens_(limits.burst),
      refilled_(loop.now()) {}

ErrorLog::~ErrorLog() {
  if (summary_timer_ != 0) loop_.cancelTimer(summary_timer_);
}

bool ErrorLog::takeToken() {
  const auto now = loop_.now();
  const double elapsed = std::chrono::duration<double>(now - refilled_).count();
  refilled_ = now;
  tokens_ = std::min(limits_.burst, tokens_ + elapsed * limits_.per_second);
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

void ErrorLog::report(const std::shared_ptr<ErrorsPlugin>& plugin, uint8_t rcode,
                      const dns::Name& qname, uint16_t qtype, std::string_view error) {
  if (plugin != nullptr) {
    if (ErrorsPlugin::Pattern* p = plugin->match(error)) {
      // CoreDNS: the first error of a period starts its timer; the line sums the period up.
      if (p->count.fetch_add(1, std::memory_order_relaxed) == 0) {
        loop_.addTimer(p->period, [plugin, p] {
          const uint64_t n = p->count.exchange(0, std::memory_order_relaxed);
          if (n > 0) logAt(p->level, n, *p);
        });
      }
      return;
    }
  }
  if (!log::enabled(log::Level::kError)) return;
  if (!takeToken()) {
    ++suppressed_;
    ++suppressed_total_;
    if (summary_timer_ == 0) {
      summary_timer_ = loop_.addTimer(limits_.summary, [this] { summarise(); });
    }
    return;
  }
  ++printed_;
  log::error("plugin/errors: {} {} {}: {}", rcode, qname.toString(), typeLabel(qtype), error);
}

void ErrorLog::summarise() {
  summary_timer_ = 0;
  if (suppressed_ == 0) return;
  log::warn(
      "plugin/errors: {} error lines suppressed in the last {} ms (at most {} lines a "
      "second per worker)",
      suppressed_, limits_.summary.count(), limits_.per_second);
  if (metrics_ != nullptr) metrics_->onLogSuppressed(suppressed_);
  suppressed_ = 0;
}

}  // namespace nld::server
