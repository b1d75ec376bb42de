// The errors plugin's consolidate patterns (CoreDNS semantics: RE2, unanchored, the first
// matching pattern wins). Their output, per worker: tests/server/errors_test.cc.
#include "plugin/errors.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "common/log.h"
#include "support/errors_config.h"

namespace nld::plugin {
namespace {

using nld::test::consolidate;
using std::chrono::milliseconds;

TEST(ErrorsPlugin, FirstMatchingPatternWinsUnanchored) {
  config::ErrorsConfig cfg;
  cfg.consolidate.push_back(consolidate("i/o timeout$", milliseconds(1000), "1s"));
  cfg.consolidate.push_back(consolidate("^read udp", milliseconds(1000), "1s"));
  cfg.consolidate.push_back(consolidate("(?i)UPSTREAMS", milliseconds(1000), "1s", "warning"));
  ErrorsPlugin p(cfg);
  ASSERT_EQ(p.patterns(), 3u);
  auto* a = p.match("read udp 10.0.0.1:53: i/o timeout");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->text, "i/o timeout$");
  auto* b = p.match("read udp 10.0.0.1:53: connection refused");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->text, "^read udp");
  auto* c = p.match("all upstreams failed or timed out");  // RE2 flags, as in Go
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->level, log::Level::kWarning);
  EXPECT_EQ(p.match("i/o timeout and more"), nullptr);
}

TEST(ErrorsPlugin, BadPatternOrLevelThrows) {
  config::ErrorsConfig cfg;
  cfg.consolidate.push_back(consolidate("(unclosed", milliseconds(1000), "1s"));
  EXPECT_THROW(ErrorsPlugin{cfg}, std::runtime_error);
  cfg.consolidate[0] = consolidate("ok", milliseconds(1000), "1s", "loud");
  EXPECT_THROW(ErrorsPlugin{cfg}, std::runtime_error);
}

}  // namespace
}  // namespace nld::plugin
