// Checks that the per-query hot path (parseQuery, readName, buildErrorResponse, buildQuery) and a
// parseResponse into a reused Response perform no heap allocation. A separate binary, because it
// replaces the global operator new to count allocations.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <vector>

#include "dns/message.h"
#include "dnspython_packets.h"

namespace {
thread_local long g_allocations = 0;
}  // namespace

// noinline: keeps GCC's -Wmismatched-new-delete from pairing a new-expression with free().
[[gnu::noinline]] void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace nld::dns {
namespace {

TEST(NoAllocation, HotPath) {
  const ByteView query(testdata::kDnspythonQueryEdns, sizeof(testdata::kDnspythonQueryEdns));
  const ByteView response(testdata::kDnspythonResponseCname,
                          sizeof(testdata::kDnspythonResponseCname));
  Query q;
  Response r;
  ASSERT_EQ(parseResponse(response, r), Error::None);  // first parse may grow r.rrs
  std::vector<uint8_t> out(1024);

  const long before = g_allocations;
  ASSERT_EQ(parseQuery(query, q), QueryStatus::Ok);
  Name n;
  size_t next = 0;
  ASSERT_EQ(readName(response, 12, n, next), Error::None);
  ASSERT_EQ(skipName(response, 33, next), Error::None);
  ASSERT_GT(buildErrorResponse(query, q, rcode::ServFail, out), 0u);
  ASSERT_GT(buildQuery(1, q.question.name, type::A, cls::IN, flag::RD, true, 1232, false, out),
            0u);
  ASSERT_EQ(parseResponse(response, r), Error::None);
  EXPECT_EQ(classify(r), ResponseType::NoError);
  EXPECT_TRUE(questionMatches(q.question, q.question));
  const long after = g_allocations;
  EXPECT_EQ(after - before, 0);

  // The counter works: a vector allocation is seen.
  std::vector<int> v(3);
  EXPECT_GT(g_allocations, after);
}

}  // namespace
}  // namespace nld::dns
