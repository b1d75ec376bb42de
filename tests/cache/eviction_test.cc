// Capacity rounding, CLOCK eviction, expired-first eviction and the byte budget.
#include <gtest/gtest.h>

#include <string>

#include "cache_fixture.h"

namespace nld::cache::testing {
namespace {

TEST(CacheCapacity, RoundedLikeCoreDnsThenPartitioned) {
  EXPECT_EQ(Cache::partitionCapacity(10000, 1), 9984u);
  EXPECT_EQ(Cache::partitionCapacity(100, 1), 1024u);  // minimum 4 per shard × 256
  EXPECT_EQ(Cache::partitionCapacity(0, 1), 1024u);
  EXPECT_EQ(Cache::partitionCapacity(2000, 1), 1792u);
  EXPECT_EQ(Cache::partitionCapacity(10000, 4), 2496u);
  EXPECT_EQ(Cache::partitionCapacity(10000, 3), 3328u);
  EXPECT_EQ(Cache::partitionCapacity(1024, 1000), 4u);  // at least 4 per partition
  Settings s;
  s.partitions = 2;
  s.denial_capacity = 5000;
  Cache c(s);
  EXPECT_EQ(c.successCapacity(), 4992u);
  EXPECT_EQ(c.denialCapacity(), 2432u);
}

// Four entries per store: 1024 configured, 256 partitions.
Settings tiny() {
  Settings s;
  s.success_capacity = 1024;
  s.denial_capacity = 1024;
  s.partitions = 256;
  return s;
}

std::string host(int i) { return "h" + std::to_string(i) + ".example.org"; }

TEST_F(CacheTest, CapacityIsEnforced) {
  Cache c(tiny());
  ASSERT_EQ(c.successCapacity(), 4u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(put(c, positive(host(i), 300)), 300u);
  EXPECT_EQ(load(c.stats().entries_success), 4u);
  EXPECT_EQ(load(c.stats().evictions_success), 16u);
  EXPECT_EQ(load(c.stats().evictions_denial), 0u);
  int present = 0;
  for (int i = 0; i < 20; ++i) present += get(c, makeQuery(host(i)), 1).kind == Kind::kHit;
  EXPECT_EQ(present, 4);
}

TEST_F(CacheTest, ClockKeepsFrequentlyHitEntry) {
  Cache c(tiny());
  put(c, positive("hot.example.org", 300));
  TestQuery hot = makeQuery("hot.example.org");
  for (int i = 0; i < 40; ++i) {
    put(c, positive(host(i), 300), {}, i);
    ASSERT_EQ(get(c, hot, i).kind, Kind::kHit) << "hot entry evicted at round " << i;
  }
  EXPECT_EQ(load(c.stats().entries_success), 4u);
  // The cold ones were cycled through: the early ones are gone.
  EXPECT_EQ(get(c, makeQuery(host(0)), 41).kind, Kind::kMiss);
  EXPECT_EQ(get(c, makeQuery(host(39)), 41).kind, Kind::kHit);
}

TEST_F(CacheTest, WithoutHitsEvictionIsFifoLike) {
  Cache c(tiny());
  for (int i = 0; i < 4; ++i) put(c, positive(host(i), 300));
  put(c, positive(host(4), 300));
  // One of the four unreferenced entries made room; the newest is present.
  EXPECT_EQ(get(c, makeQuery(host(4)), 0).kind, Kind::kHit);
  EXPECT_EQ(load(c.stats().evictions_success), 1u);
}

TEST_F(CacheTest, ExpiredEntriesAreEvictedFirst) {
  Cache c(tiny());
  put(c, positive(host(0), 600));
  put(c, positive(host(1), 10));
  put(c, positive(host(2), 600));
  put(c, positive(host(3), 10));
  // None referenced; two expired by t=20. Inserting two more must drop only the expired ones.
  put(c, positive(host(4), 600), {}, 20);
  put(c, positive(host(5), 600), {}, 20);
  for (int i : {0, 2, 4, 5}) EXPECT_EQ(get(c, makeQuery(host(i)), 21).kind, Kind::kHit) << i;
  EXPECT_EQ(load(c.stats().entries_success), 4u);
}

TEST_F(CacheTest, ExpiredEntriesArePurgedIncrementally) {
  Cache c(tiny());
  for (int i = 0; i < 4; ++i) put(c, positive(host(i), 10));
  EXPECT_EQ(load(c.stats().entries_success), 4u);
  // An insert at t=100 (any key) purges dead entries it passes.
  put(c, positive(host(9), 600), {}, 100);
  EXPECT_EQ(load(c.stats().entries_success), 1u);
  EXPECT_EQ(load(c.stats().evictions_success), 0u);  // purging is not eviction
}

TEST_F(CacheTest, StaleWindowKeepsExpiredEntriesAlive) {
  Settings s = tiny();
  s.serve_stale_s = 3600;
  Cache c(s);
  for (int i = 0; i < 4; ++i) put(c, positive(host(i), 10));
  put(c, positive(host(9), 600), {}, 100);  // all four still within the stale window
  EXPECT_EQ(load(c.stats().entries_success), 4u);
  EXPECT_EQ(load(c.stats().evictions_success), 1u);
}

TEST_F(CacheTest, ByteBudgetBoundsStoredBytes) {
  Settings s = tiny();
  s.bytes_per_entry_budget = 128;  // 4 × 128 = 512 bytes per store
  Cache c(s);
  // ~48 bytes each (+2 per TTL offset): many fit by count only up to 4.
  for (int i = 0; i < 4; ++i) EXPECT_GT(put(c, positive(host(i), 300)), 0u);
  EXPECT_EQ(load(c.stats().entries_success), 4u);
  // A 30-record answer (~960 bytes) can never fit.
  ResponseSpec big;
  big.qname = "big.example.org";
  for (int i = 0; i < 30; ++i) big.answer.push_back(aRecord("big.example.org", 300));
  EXPECT_EQ(put(c, big), 0u);
  EXPECT_EQ(get(c, makeQuery("big.example.org"), 0).kind, Kind::kMiss);
  EXPECT_EQ(load(c.stats().entries_success), 4u);  // nothing evicted for it
  // A 10-record answer (~340 bytes) fits only after evicting others.
  ResponseSpec mid;
  mid.qname = "mid.example.org";
  for (int i = 0; i < 10; ++i) mid.answer.push_back(aRecord("mid.example.org", 300));
  EXPECT_EQ(put(c, mid), 300u);
  EXPECT_EQ(get(c, makeQuery("mid.example.org"), 0).kind, Kind::kHit);
  EXPECT_LT(load(c.stats().entries_success), 4u);
  EXPECT_GE(load(c.stats().evictions_success), 2u);
}

TEST_F(CacheTest, MemoryIsBoundedUnderChurn) {
  Settings s;
  s.success_capacity = 1024;
  Cache c(s);
  for (int i = 0; i < 200; ++i) put(c, positive(host(i), 300));
  size_t after_200 = c.memoryBytes();
  for (int i = 200; i < 5000; ++i) put(c, positive(host(i), 300));
  EXPECT_EQ(load(c.stats().entries_success), 1024u);
  size_t full = c.memoryBytes();
  EXPECT_GT(full, after_200);
  for (int i = 5000; i < 10000; ++i) put(c, positive(host(i), 300));
  EXPECT_EQ(c.memoryBytes(), full);  // same-size entries: steady state
  // Tables plus at most the byte budget.
  EXPECT_LE(full, 2u * 1024 * 1024 + 1024u * 1024);
}

}  // namespace
}  // namespace nld::cache::testing
