// A cache hit must not touch the heap: this binary replaces the global operator new/delete with
// counting versions and asserts zero allocations across 1000 hits (with and without EDNS, fresh,
// stale and truncated).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "cache_fixture.h"

namespace {
std::atomic<uint64_t> g_allocations{0};
std::atomic<uint64_t> g_deallocations{0};

// Out of line so the compiler cannot pair an inlined malloc with a visible delete.
[[gnu::noinline]] void* countedAlloc(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void countedFree(void* p) noexcept {
  if (p) g_deallocations.fetch_add(1, std::memory_order_relaxed);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) { return countedAlloc(n); }
void* operator new[](std::size_t n) { return countedAlloc(n); }
void operator delete(void* p) noexcept { countedFree(p); }
void operator delete[](void* p) noexcept { countedFree(p); }
void operator delete(void* p, std::size_t) noexcept { countedFree(p); }
void operator delete[](void* p, std::size_t) noexcept { countedFree(p); }

namespace nld::cache::testing {
namespace {

using AllocTest = CacheTest;

TEST_F(AllocTest, CountingAllocatorSeesAllocations) {
  // Guards the test itself: if the replacement were not linked, the next test could not fail.
  uint64_t before = g_allocations.load();
  auto* p = new std::vector<int>(100);
  delete p;
  EXPECT_GE(g_allocations.load() - before, 2u);
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
  uint64_t allocs = g_allocations.load();
  uint64_t frees = g_deallocations.load();
  size_t hits = 0, stale = 0, prefetch = 0;
  for (int i = 0; i < 1000; ++i) {
    const TestQuery& q = queries[i % 5];
    LookupResult r = c.lookup(q.view(), q.q, at(20 + i / 10), 512, dns::MutableBytes(buf_));
    hits += r.kind == Kind::Hit;
    stale += r.kind == Kind::Stale;
    prefetch += r.prefetch;
  }
  EXPECT_EQ(g_allocations.load() - allocs, 0u);
  EXPECT_EQ(g_deallocations.load() - frees, 0u);
  EXPECT_EQ(hits, 800u);
  EXPECT_EQ(stale, 200u);
  EXPECT_GT(prefetch, 0u);
}

}  // namespace
}  // namespace nld::cache::testing
