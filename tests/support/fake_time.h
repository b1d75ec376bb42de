#pragma once
// A net::TimeSource that moves only when the test says so. Give it to an EventLoop and drive the
// loop with runOnce(): timers, expiries and budgets then fire exactly when the test advances
// the time past them, with no sleeping and no tolerance windows.
#include <atomic>
#include <chrono>

#include "net/event_loop.h"

namespace nld::test {

class FakeTime final : public net::TimeSource {
 public:
  // Starts well away from the epoch so "now - duration" never underflows.
  FakeTime() : t_(net::Clock::time_point(std::chrono::hours(1000))) {}
  net::Clock::time_point now() const override { return t_.load(); }
  void advance(std::chrono::nanoseconds d) { t_.store(t_.load() + d); }

 private:
  std::atomic<net::Clock::time_point> t_;
};

}  // namespace nld::test
