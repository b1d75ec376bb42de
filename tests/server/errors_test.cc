// The errors plugin's output: consolidate (CoreDNS semantics: one line per period, counted
// across reports) and the rate limit on the lines that are not consolidated. The patterns
// themselves: tests/plugin/errors_test.cc.
#include "server/errors.h"

#include <gtest/gtest.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/log.h"
#include "support/capture_stdout.h"
#include "support/errors_config.h"
#include "support/eventually.h"

namespace nld::server {
namespace {

using nld::test::CaptureStdout;
using nld::test::consolidate;
using plugin::ErrorsPlugin;
using std::chrono::milliseconds;

dns::Name name(const char* s) { return *dns::Name::fromString(s); }

/// An event loop on its own thread; run() executes a function on it and waits.
class LoopThread {
 public:
  LoopThread() : thread_([this] { loop.run(); }) {}
  ~LoopThread() {
    loop.stop();
    thread_.join();
  }
  void run(const std::function<void()>& fn) {
    std::promise<void> done;
    loop.post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  net::EventLoop loop;

 private:
  std::thread thread_;
};

/// Waits (bounded, 5 s) until `cap` has captured `what`; returns everything captured.
std::string waitFor(CaptureStdout& cap, const std::string& what) {
  test::eventually([&] { return cap.peek().find(what) != std::string::npos; }, milliseconds(5000),
                   milliseconds(10));
  return cap.text();
}

TEST(ErrorLog, ConsolidatesMatchingErrorsIntoOneLinePerPeriod) {
  log::init(false);
  config::ErrorsConfig cfg;
  cfg.consolidate.push_back(
      consolidate("failed or timed out$", milliseconds(50), "50ms", "warning"));
  auto plugin = std::make_shared<ErrorsPlugin>(cfg);
  LoopThread lt;
  std::unique_ptr<ErrorLog> el;
  std::string text;
  {
    CaptureStdout cap;
    lt.run([&] {
      el = std::make_unique<ErrorLog>(lt.loop, nullptr);
      for (int i = 0; i < 3; ++i) {
        el->report(plugin, 2, name("a.example.org"), 1, "all upstreams failed or timed out");
      }
      el->report(plugin, 5, name("b.example.org"), 28, "concurrent queries exceeded maximum");
    });
    // The one that matches no pattern is printed at once, in CoreDNS's layout.
    EXPECT_EQ(cap.peek(),
              "[ERROR] plugin/errors: 5 b.example.org. AAAA: concurrent queries exceeded "
              "maximum\n");
    text = waitFor(cap, "errors like");
  }
  EXPECT_NE(text.find("[WARNING] plugin/errors: 3 errors like 'failed or timed out$' occurred "
                      "in last 50ms\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("a.example.org"), std::string::npos) << text;
  // The count starts again: the next period has its own line.
  {
    CaptureStdout cap;
    lt.run([&] { el->report(plugin, 2, name("c.example.org"), 1, "x failed or timed out"); });
    text = waitFor(cap, "errors like");
  }
  EXPECT_NE(text.find("[WARNING] plugin/errors: 1 errors like"), std::string::npos) << text;
  lt.run([&] { el.reset(); });
}

TEST(ErrorLog, RateLimitsLinesAndSumsUpTheSuppressedOnes) {
  log::init(false);
  LoopThread lt;
  std::unique_ptr<ErrorLog> el;
  ErrorLog::Limits limits;
  limits.per_second = 1e-6;  // no refill within the test
  limits.burst = 5;
  limits.summary = milliseconds(50);
  std::string text;
  {
    CaptureStdout cap;
    lt.run([&] {
      el = std::make_unique<ErrorLog>(lt.loop, nullptr, limits);
      for (int i = 0; i < 20; ++i) {
        el->report(nullptr, 2, name("flood.example.org"), 1, "all upstreams failed or timed out");
      }
    });
    const std::string first = cap.peek();
    size_t lines = 0;
    for (char c : first) lines += c == '\n';
    EXPECT_EQ(lines, 5u) << first;
    text = waitFor(cap, "suppressed");
  }
  EXPECT_NE(text.find("[WARNING] plugin/errors: 15 error lines suppressed"), std::string::npos)
      << text;
  uint64_t printed = 0, suppressed = 0;
  lt.run([&] {
    printed = el->printed();
    suppressed = el->suppressed();
    el.reset();
  });
  EXPECT_EQ(printed, 5u);
  EXPECT_EQ(suppressed, 15u);
}

}  // namespace
}  // namespace nld::server
