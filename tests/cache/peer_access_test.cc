// A peer worker's look into another worker's partition (Access::kPeer): it takes only an answer it
// can send; a miss, or an expired entry under serve_stale verify, is left to the owner untouched
// (no dead entry erased). A peer's look is never counted in the partition's Stats (the owner's
// lookup counters; the peer's worker metrics count its answers). With more than one partition
// the cache is safe to share between the owner and peers (run under ThreadSanitizer in CI).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cache/cache.h"
#include "cache_fixture.h"

namespace nld::cache::testing {
namespace {

class PeerAccessTest : public CacheTest {
 protected:
  LookupResult peer(Cache& c, const TestQuery& q, int64_t t) {
    return c.lookup(q.view(), q.q, dns::keyHash(q.q), at(t), 65535, dns::MutableBytes(buf_),
                    Access::kPeer);
  }
};

TEST_F(PeerAccessTest, APeersLookIsNotCountedInTheOwnersStats) {
  Cache c(Settings{});
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(peer(c, q, 0).kind, Kind::kMiss);
  EXPECT_EQ(load(c.stats().requests), 0u);
  EXPECT_EQ(load(c.stats().misses), 0u);
  put(c, positive("www.example.org", 300));
  const LookupResult r = peer(c, q, 10);
  EXPECT_EQ(r.kind, Kind::kHit);
  EXPECT_EQ(out(r).ttls, std::vector<uint32_t>{290});
  EXPECT_EQ(load(c.stats().requests), 0u);
  EXPECT_EQ(load(c.stats().hits_success), 0u);
  EXPECT_EQ(get(c, q, 11).kind, Kind::kHit);
  EXPECT_EQ(load(c.stats().requests), 1u);
  EXPECT_EQ(load(c.stats().hits_success), 1u);
}

TEST_F(PeerAccessTest, ADeadEntryIsErasedByTheOwnerOnly) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 30));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(peer(c, q, 31).kind, Kind::kMiss);
  EXPECT_EQ(load(c.stats().entries_success), 1u);
  EXPECT_EQ(get(c, q, 31).kind, Kind::kMiss);
  EXPECT_EQ(load(c.stats().entries_success), 0u);
  EXPECT_EQ(load(c.stats().requests), 1u);
  EXPECT_EQ(load(c.stats().misses), 1u);
}

TEST_F(PeerAccessTest, ServeStaleVerifyIsTheOwnersAndImmediateStaleIsServedWithOneRefresh) {
  Settings verify;
  verify.serve_stale_s = 3600;
  verify.serve_stale_verify = true;
  Cache v(verify);
  put(v, positive("www.example.org", 30));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(peer(v, q, 40).kind, Kind::kMiss);
  EXPECT_EQ(load(v.stats().requests), 0u);
  EXPECT_EQ(get(v, q, 40).kind, Kind::kStaleVerify);

  Settings immediate;
  immediate.serve_stale_s = 3600;
  Cache i(immediate);
  put(i, positive("www.example.org", 30));
  LookupResult r = peer(i, q, 40);
  EXPECT_EQ(r.kind, Kind::kStale);
  EXPECT_TRUE(r.prefetch) << "the peer is handed the refresh, to pass to the owner";
  EXPECT_EQ(out(r).ttls, std::vector<uint32_t>{kStaleTtl});
  EXPECT_FALSE(peer(i, q, 41).prefetch) << "one refresh at a time";
  EXPECT_FALSE(get(i, q, 41).prefetch);
  EXPECT_EQ(load(i.stats().served_stale), 1u) << "the owner's answer only";
}

TEST_F(PeerAccessTest, OwnerAndPeerShareAPartitionAcrossThreads) {
  Settings s;
  s.partitions = 2;
  s.success_capacity = 2048;
  Cache c(s);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> peer_hits{0};
  std::thread reader([&] {
    std::vector<uint8_t> buf(dns::kMaxMessageSize);
    TestQuery q = makeQuery("n1.example.org");
    const uint64_t h = dns::keyHash(q.q);
    while (!stop.load()) {
      const LookupResult r =
          c.lookup(q.view(), q.q, h, at(1), 65535, dns::MutableBytes(buf), Access::kPeer);
      if (r.kind == Kind::kHit) peer_hits.fetch_add(1);
    }
  });
  // The owner inserts (and so evicts: 4 times the capacity) and looks up meanwhile.
  for (int round = 0; round < 4; ++round) {
    for (int i = 0; i < 1024; ++i) {
      put(c, positive("n" + std::to_string(i) + ".example.org", 300));
      TestQuery q = makeQuery("n" + std::to_string(i) + ".example.org");
      get(c, q, 1);
    }
  }
  put(c, positive("n1.example.org", 300));
  // Bounded: a reader that never hits fails below instead of hanging.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (peer_hits.load() == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  stop = true;
  reader.join();
  EXPECT_GT(peer_hits.load(), 0u);
  EXPECT_EQ(load(c.stats().requests), 4u * 1024);
}

}  // namespace
}  // namespace nld::cache::testing
