#include <gtest/gtest.h>

#include "plan/plan.h"

namespace nld::plan {
namespace {

dns::Name n(const char* s) { return *dns::Name::fromString(s); }

TEST(ZoneTable, LongestSuffixWinsCaseInsensitively) {
  ZoneTable t;
  t.add(n("."), ".", 3);
  t.add(n("cluster.local."), "cluster.local.", 0);
  t.add(n("in-addr.arpa."), "in-addr.arpa.", 1);
  t.add(n("svc.cluster.local."), "svc.cluster.local.", 2);
  EXPECT_EQ(t.match(n("KubeRnetes.Default.SVC.cluster.local."), 1)->block, 2u);
  EXPECT_EQ(t.match(n("pod.cluster.local."), 1)->block, 0u);
  EXPECT_EQ(t.match(n("10.0.96.10.in-addr.arpa."), 12)->block, 1u);
  EXPECT_EQ(t.match(n("example.org."), 1)->block, 3u);
  // Label-aligned: "xcluster.local." is not below "cluster.local.".
  EXPECT_EQ(t.match(n("xcluster.local."), 1)->block, 3u);
}

TEST(ZoneTable, NoMatchWithoutRootZone) {
  ZoneTable t;
  t.add(n("cluster.local."), "cluster.local.", 0);
  EXPECT_EQ(t.match(n("example.org."), 1), nullptr);
  EXPECT_EQ(t.match(n("local."), 1), nullptr);
}

TEST(ZoneTable, DsGoesToTheParentSide) {
  ZoneTable t;
  t.add(n("."), ".", 0);
  t.add(n("local."), "local.", 1);
  t.add(n("cluster.local."), "cluster.local.", 2);
  EXPECT_EQ(t.match(n("cluster.local."), 43)->block, 1u);  // DS: shortest non-root
  EXPECT_EQ(t.match(n("cluster.local."), 1)->block, 2u);
}

}  // namespace
}  // namespace nld::plan
