// Prefetch trigger conditions and serve_stale (immediate and verify).
#include <gtest/gtest.h>

#include "cache_fixture.h"

namespace nld::cache::testing {
namespace {

Settings prefetching(uint32_t amount, uint32_t window_s = 60, uint32_t pct = 10) {
  Settings s;
  s.prefetch_amount = amount;
  s.prefetch_window_s = window_s;
  s.prefetch_percentage = pct;
  return s;
}

TEST_F(CacheTest, PrefetchWhenPopularAndNearExpiry) {
  Cache c(prefetching(2));
  put(c, positive("www.example.org", 100));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_FALSE(get(c, q, 50).prefetch);  // 1 hit
  LookupResult r = get(c, q, 91);        // 2 hits, 9 s left ≤ ceil(10% × 100)
  EXPECT_EQ(r.kind, Kind::kHit);
  EXPECT_TRUE(r.prefetch);
  EXPECT_FALSE(get(c, q, 92).prefetch);  // one refresh in flight at a time
  EXPECT_EQ(load(c.stats().prefetches), 1u);
  put(c, positive("www.example.org", 100), {}, 93);  // the refresh lands
  EXPECT_FALSE(get(c, q, 150).prefetch);             // 43 s left
  EXPECT_TRUE(get(c, q, 185).prefetch);              // hit count carried over the refresh
  EXPECT_EQ(load(c.stats().prefetches), 2u);
}

TEST_F(CacheTest, PrefetchNeedsEnoughHits) {
  Cache c(prefetching(3));
  put(c, positive("www.example.org", 100));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_FALSE(get(c, q, 91).prefetch);
  EXPECT_FALSE(get(c, q, 92).prefetch);
  EXPECT_TRUE(get(c, q, 93).prefetch);
}

TEST_F(CacheTest, PrefetchHitsResetAfterQuietWindow) {
  Cache c(prefetching(2, 60));
  put(c, positive("www.example.org", 100));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_FALSE(get(c, q, 0).prefetch);
  EXPECT_FALSE(get(c, q, 91).prefetch);  // 91 s since the last hit: count restarts at 1
  EXPECT_TRUE(get(c, q, 92).prefetch);
}

TEST_F(CacheTest, PrefetchOnlyInTheLastPercentOfTheDuration) {
  Cache c(prefetching(1, 60, 20));
  put(c, positive("www.example.org", 95));  // threshold ceil(20% × 95) = 19
  TestQuery q = makeQuery("www.example.org");
  EXPECT_FALSE(get(c, q, 75).prefetch);  // 20 s left
  EXPECT_TRUE(get(c, q, 76).prefetch);   // 19 s left
}

TEST_F(CacheTest, PrefetchDisabledByDefault) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 100));
  TestQuery q = makeQuery("www.example.org");
  for (int t = 90; t < 100; ++t) EXPECT_FALSE(get(c, q, t).prefetch);
  EXPECT_EQ(load(c.stats().prefetches), 0u);
}

TEST_F(CacheTest, UnansweredPrefetchIsHandedOutAgainAfterRecheck) {
  Cache c(prefetching(1, 3600, 50));
  put(c, positive("www.example.org", 3600));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_TRUE(get(c, q, 1900).prefetch);
  EXPECT_FALSE(get(c, q, 1910).prefetch);
  EXPECT_FALSE(get(c, q, 1929).prefetch);
  EXPECT_TRUE(get(c, q, 1930).prefetch);  // kRefreshRecheck = 30 s
}

Settings stale(bool verify) {
  Settings s;
  s.serve_stale_s = 3600;
  s.serve_stale_verify = verify;
  return s;
}

TEST_F(CacheTest, ExpiredIsMissWithoutServeStale) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 10));
  EXPECT_EQ(get(c, makeQuery("www.example.org"), 20).kind, Kind::kMiss);
  Settings zero;
  zero.serve_stale_s = 0;
  Cache c0(zero);
  put(c0, positive("www.example.org", 10));
  EXPECT_EQ(get(c0, makeQuery("www.example.org"), 10).kind, Kind::kMiss);
}

TEST_F(CacheTest, ServeStaleImmediate) {
  Cache c(stale(false));
  put(c, positive("www.example.org", 10));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(get(c, q, 5).kind, Kind::kHit);
  LookupResult r = get(c, q, 20);
  ASSERT_EQ(r.kind, Kind::kStale);
  EXPECT_TRUE(r.prefetch);  // the caller refreshes in the background
  Output o = out(r);
  EXPECT_EQ(o.ttls, std::vector<uint32_t>{kStaleTtl});
  EXPECT_TRUE(o.header().aa());
  LookupResult again = get(c, q, 21);
  EXPECT_EQ(again.kind, Kind::kStale);
  EXPECT_FALSE(again.prefetch);  // refresh already in flight
  EXPECT_EQ(load(c.stats().served_stale), 2u);
  EXPECT_EQ(load(c.stats().hits_success), 3u);
  EXPECT_EQ(get(c, q, 10 + 3599).kind, Kind::kStale);
  EXPECT_EQ(get(c, q, 10 + 3600).kind, Kind::kMiss);  // beyond the stale window
}

TEST_F(CacheTest, ServeStaleRefreshReplacesEntry) {
  Cache c(stale(false));
  put(c, positive("www.example.org", 10));
  TestQuery q = makeQuery("www.example.org");
  ASSERT_TRUE(get(c, q, 20).prefetch);
  put(c, positive("www.example.org", 10), {}, 21);
  LookupResult r = get(c, q, 22);
  EXPECT_EQ(r.kind, Kind::kHit);
  EXPECT_EQ(out(r).ttls, std::vector<uint32_t>{9});
  EXPECT_TRUE(get(c, q, 40).prefetch);  // a new stale period hands out a new refresh
}

TEST_F(CacheTest, ServeStaleDenial) {
  Cache c(stale(false));
  put(c, nxdomain("nx.example.org", 60, 60));
  LookupResult r = get(c, makeQuery("nx.example.org"), 100);
  EXPECT_EQ(r.kind, Kind::kStale);
  EXPECT_TRUE(r.denial);
  EXPECT_EQ(out(r).header().rcode(), dns::rcode::NxDomain);
}

TEST_F(CacheTest, ServeStaleVerify) {
  Cache c(stale(true));
  put(c, positive("www.example.org", 10));
  TestQuery q = makeQuery("www.example.org");
  buf_[0] = 0xAB;
  LookupResult r = get(c, q, 20);
  EXPECT_EQ(r.kind, Kind::kStaleVerify);
  EXPECT_EQ(r.length, 0u);
  EXPECT_EQ(buf_[0], 0xAB);  // nothing written
  EXPECT_EQ(load(c.stats().served_stale), 0u);
  // Upstream failed: serve the stale entry.
  LookupResult s =
      c.lookupStale(q.view(), q.q, dns::keyHash(q.q), at(25), 512, dns::MutableBytes(buf_));
  ASSERT_EQ(s.kind, Kind::kStale);
  EXPECT_EQ(out(s).ttls, std::vector<uint32_t>{kStaleTtl});
  EXPECT_EQ(load(c.stats().served_stale), 1u);
  EXPECT_EQ(load(c.stats().requests), 1u);  // lookupStale is not a new request
  // Upstream succeeded instead: the refreshed entry is a normal hit.
  put(c, positive("www.example.org", 300), {}, 30);
  EXPECT_EQ(get(c, q, 31).kind, Kind::kHit);
  EXPECT_EQ(
      c.lookupStale(q.view(), q.q, dns::keyHash(q.q), at(31), 512, dns::MutableBytes(buf_)).kind,
      Kind::kHit);
  // Nothing cached at all: lookupStale misses.
  TestQuery other = makeQuery("other.example.org");
  EXPECT_EQ(c.lookupStale(other.view(), other.q, dns::keyHash(other.q), at(31), 512,
                          dns::MutableBytes(buf_))
                .kind,
            Kind::kMiss);
}

}  // namespace
}  // namespace nld::cache::testing
