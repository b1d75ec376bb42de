// U64Map against std::unordered_map under random inserts/erases, with keys chosen to collide in
// the low bits (long probe runs that wrap around the table end, backward-shift deletion).
#include "upstream/u64_map.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace nld::upstream {
namespace {

TEST(U64Map, MatchesUnorderedMapUnderRandomOperations) {
  std::mt19937_64 rng(12345);
  for (int round = 0; round < 20; ++round) {
    U64Map m;
    std::unordered_map<uint64_t, uint64_t> ref;
    for (int op = 0; op < 5000; ++op) {
      // 64 distinct keys whose low 4 bits take only 3 values: heavy clustering.
      const uint64_t k = ((rng() % 64) << 8) | (0xd + rng() % 3);
      switch (rng() % 3) {
        case 0:
        case 1: {
          const uint64_t v = 1 + rng() % 1000;
          m.insert(k, v);
          ref[k] = v;
          break;
        }
        default:
          m.erase(k);
          ref.erase(k);
      }
      ASSERT_EQ(m.size(), ref.size());
      for (uint64_t probe = 0; probe < 64; probe += 7) {
        const uint64_t key = (probe << 8) | (0xd + probe % 3);
        auto it = ref.find(key);
        ASSERT_EQ(m.find(key), it == ref.end() ? 0 : it->second) << round << " " << op;
      }
    }
    for (const auto& [k, v] : ref) ASSERT_EQ(m.find(k), v);
  }
}

TEST(U64Map, EmptyAndMissing) {
  U64Map m;
  EXPECT_EQ(m.find(42), 0u);
  m.erase(42);
  m.insert(0, 7);  // key 0 is an ordinary key
  EXPECT_EQ(m.find(0), 7u);
  m.erase(0);
  EXPECT_EQ(m.find(0), 0u);
  EXPECT_EQ(m.size(), 0u);
}

}  // namespace
}  // namespace nld::upstream
