// Checks that the per-query hot path (parseQuery, readName, buildErrorResponse, buildQuery) and a
// parseResponse into a reused Response perform no heap allocation. A separate binary, because it
// links the counting global operator new (support/counting_allocator.h).
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <vector>

#include "dns/message.h"
#include "dnspython_packets.h"
#include "support/counting_allocator.h"

namespace nld::dns {
namespace {

TEST(NoAllocation, HotPath) {
  const ByteView query(testdata::kDnspythonQueryEdns, sizeof(testdata::kDnspythonQueryEdns));
  const ByteView response(testdata::kDnspythonResponseCname,
                          sizeof(testdata::kDnspythonResponseCname));
  Query q;
  Response r;
  ASSERT_EQ(parseResponse(response, r), Error::kNone);  // first parse may grow r.rrs
  std::vector<uint8_t> out(1024);

  const uint64_t before = test::threadAllocations();
  ASSERT_EQ(parseQuery(query, q), QueryStatus::kOk);
  Name n;
  size_t next = 0;
  ASSERT_EQ(readName(response, 12, n, next), Error::kNone);
  ASSERT_EQ(skipName(response, 33, next), Error::kNone);
  ASSERT_GT(buildErrorResponse(query, q, rcode::ServFail, out), 0u);
  ASSERT_GT(buildQuery(1, q.question.name, type::A, cls::IN, flag::RD, true, 1232, false, out), 0u);
  ASSERT_EQ(parseResponse(response, r), Error::kNone);
  EXPECT_EQ(classify(r), ResponseType::kNoError);
  EXPECT_TRUE(questionMatches(q.question, q.question));
  const uint64_t after = test::threadAllocations();
  EXPECT_EQ(after - before, 0u);

  // The counter works: a vector allocation is seen.
  std::vector<int> v(3);
  EXPECT_GT(test::threadAllocations(), after);
}

}  // namespace
}  // namespace nld::dns
