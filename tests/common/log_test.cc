// nld::log: the CoreDNS-style line format, quiet mode, runtime format errors reported instead of
// thrown, and whole lines from concurrent threads.
#include "common/log.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "support/capture_stdout.h"

namespace nld::log {
using nld::test::CaptureStdout;
namespace {

TEST(Log, CorednsLineLayout) {
  init(false);
  CaptureStdout cap;
  info("Starting node-cache image: nodelocaldns-{}", "1.2.3");
  warn("x={} y={}", 1, 2.5);
  error("plugin/forward: {}", std::string("boom"));
  debug("never {}", 1);
  EXPECT_EQ(cap.text(),
            "[INFO] Starting node-cache image: nodelocaldns-1.2.3\n"
            "[WARNING] x=1 y=2.5\n"
            "[ERROR] plugin/forward: boom\n");
}

TEST(Log, QuietDropsInfo) {
  init(true);
  CaptureStdout cap;
  info("hidden");
  warn("shown");
  EXPECT_EQ(cap.text(), "[WARNING] shown\n");
  EXPECT_FALSE(enabled(Level::kInfo));
  EXPECT_TRUE(enabled(Level::kError));
  init(false);
}

TEST(Log, RuntimeFormatErrorIsReportedNotThrown) {
  init(false);
  CaptureStdout cap;
  // A dynamic width that is negative is only detected at run time.
  EXPECT_NO_THROW(info("{:{}}", 1, -5));
  const std::string out = cap.text();
  EXPECT_EQ(out.rfind("[ERROR] log: cannot format '{:{}}': ", 0), 0u) << out;
}

TEST(Log, LongLinesAndConcurrentWritersStayWhole) {
  init(false);
  const std::string big(3000, 'x');  // larger than the inline buffer
  CaptureStdout cap;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) info("t{} i{} {}", t, i, big);
    });
  }
  for (auto& th : threads) th.join();
  const std::string out = cap.text();
  size_t lines = 0, pos = 0;
  while (pos < out.size()) {
    const size_t nl = out.find('\n', pos);
    ASSERT_NE(nl, std::string::npos);
    const std::string_view line(out.data() + pos, nl - pos);
    ASSERT_EQ(line.rfind("[INFO] t", 0), 0u);
    ASSERT_EQ(line.size() - line.rfind(' ') - 1, big.size());
    ++lines;
    pos = nl + 1;
  }
  EXPECT_EQ(lines, 800u);
}

}  // namespace
}  // namespace nld::log
