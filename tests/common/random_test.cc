#include "common/random.h"

#include <gtest/gtest.h>

#include <set>

namespace nld {
namespace {

TEST(Random, BelowStaysInRangeAndSpreads) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = randomBelow(16);
    ASSERT_LT(v, 16u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 16u);
}

TEST(Random, SixtyFourBitValuesDiffer) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(random64());
  EXPECT_EQ(seen.size(), 1000u);
}

}  // namespace
}  // namespace nld
