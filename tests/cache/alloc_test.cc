// A cache hit must not touch the heap: this binary links the counting global operator new/delete
// (support/counting_allocator.h) and asserts zero allocations across 1000 hits (with and without
// EDNS, fresh, stale and truncated).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "cache_fixture.h"
#include "support/counting_allocator.h"

namespace nld::cache::testing {
namespace {

using AllocTest = CacheTest;

TEST_F(AllocTest, CountingAllocatorSeesAllocations) {
  // Guards the test itself: if the replacement were not linked, the next test could not fail.
  uint64_t before = test::threadAllocations();
  auto* p = new std::vector<int>(100);
  // The pointers escape, so the compiler cannot elide the two allocations (it may pair a new
  // with its delete once the counting operator new lives in another translation unit).
  asm volatile("" : : "g"(p), "g"(p->data()) : "memory");
  delete p;
  EXPECT_GE(test::threadAllocations() - before, 2u);
}

TEST_F(AllocTest, ThousandHitsAllocateNothing) {
  Settings s;
  s.prefetch_amount = 1;
  s.serve_stale_s = 3600;
  Cache c(s);
  ResponseSpec many;
  many.qname = "big.example.org";
  for (int i = 0; i < 30; ++i) many.answer.push_back(aRecord("big.example.org", 300));
  put(c, positive("www.example.org", 300));
  put(c, nxdomain("nx.example.org", 600, 600));
  put(c, many);
  put(c, positive("old.example.org", 10));
  QueryOptions e;
  e.edns = true;
  e.id = 99;
  TestQuery queries[] = {makeQuery("WWW.example.org"), makeQuery("www.example.org", e),
                         makeQuery("nx.example.org"), makeQuery("big.example.org"),
                         makeQuery("old.example.org")};
  uint64_t allocs = test::threadAllocations();
  uint64_t frees = test::threadDeallocations();
  size_t hits = 0, stale = 0, prefetch = 0;
  for (int i = 0; i < 1000; ++i) {
    const TestQuery& q = queries[i % 5];
    LookupResult r =
        c.lookup(q.view(), q.q, dns::keyHash(q.q), at(20 + i / 10), 512, dns::MutableBytes(buf_));
    hits += r.kind == Kind::kHit;
    stale += r.kind == Kind::kStale;
    prefetch += r.prefetch;
  }
  EXPECT_EQ(test::threadAllocations() - allocs, 0u);
  EXPECT_EQ(test::threadDeallocations() - frees, 0u);
  EXPECT_EQ(hits, 800u);
  EXPECT_EQ(stale, 200u);
  EXPECT_GT(prefetch, 0u);
}

}  // namespace
}  // namespace nld::cache::testing
