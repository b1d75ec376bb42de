// ServerMetrics' per-worker handle caches are keyed by the addresses of a plan's label strings.
// A reload frees the old plan, and the new plan may put a different label at the same address:
// forgetHandles (called by Pipeline::setPlan) must make the next update find the new label.
#include <gtest/gtest.h>

#include <string>

#include "observability/coredns_metrics.h"
#include "observability/metrics.h"
#include "server/metrics.h"

namespace nld::server {
namespace {

class MetricsHandlesTest : public ::testing::Test {
 protected:
  MetricsHandlesTest() : catalogue_(registry_), metrics_(catalogue_, 2) {}

  double entries(const std::string& server, const std::string& zones, const char* type) {
    return catalogue_.cache_entries.with({server, zones, "", type}).value();
  }

  observability::Registry registry_;
  observability::CorednsMetrics catalogue_;
  ServerMetrics metrics_;
};

TEST_F(MetricsHandlesTest, CacheEntriesGoToTheLabelsOfTheCurrentPlanAfterForgetHandles) {
  // One std::string object stands for "a freed label and a new one at the same address".
  std::string server = "dns://:53";
  std::string zones = "cluster.local.";
  metrics_.onCacheEntries(0, server, zones, false, 3);
  metrics_.onCacheEntries(0, server, zones, true, 1);
  EXPECT_EQ(entries("dns://:53", "cluster.local.", "success"), 3);
  EXPECT_EQ(entries("dns://:53", "cluster.local.", "denial"), 1);

  zones = "example.";  // same address, new plan's label
  metrics_.forgetHandles(0);
  metrics_.onCacheEntries(0, server, zones, false, 2);
  EXPECT_EQ(entries("dns://:53", "example.", "success"), 2);
  EXPECT_EQ(entries("dns://:53", "cluster.local.", "success"), 3);  // untouched
}

TEST_F(MetricsHandlesTest, WorkersShareTheGaugeAndForgetOnlyTheirOwnHandles) {
  std::string server = "dns://:53";
  std::string zones = ".";
  metrics_.onCacheEntries(0, server, zones, false, 5);
  metrics_.onCacheEntries(1, server, zones, false, -2);
  EXPECT_EQ(entries("dns://:53", ".", "success"), 3);

  metrics_.forgetHandles(0);
  zones = "other.";
  metrics_.onCacheEntries(0, server, zones, false, 1);
  EXPECT_EQ(entries("dns://:53", "other.", "success"), 1);
  // Worker 1 has not installed the new plan yet: its handle still names the old labels.
  metrics_.onCacheEntries(1, server, zones, false, 1);
  EXPECT_EQ(entries("dns://:53", ".", "success"), 4);
}

}  // namespace
}  // namespace nld::server
