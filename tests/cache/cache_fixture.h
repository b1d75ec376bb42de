#pragma once
// Shared fixture for the cache tests: fake time (no sleeping), a 64 KiB output buffer and
// one-line insert/lookup helpers. Tests hand the cache dns::keyHash(q) as the pipeline does
// (computed once per query); the cache has no overload that hashes for them.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cache/cache.h"
#include "dns/key_hash.h"
#include "test_packets.h"

namespace nld::cache::testing {

inline ResponseSpec positive(const std::string& qname, uint32_t ttl) {
  ResponseSpec s;
  s.qname = qname;
  s.answer = {aRecord(qname, ttl)};
  return s;
}

inline ResponseSpec nxdomain(const std::string& qname, uint32_t soa_ttl, uint32_t minimum) {
  ResponseSpec s;
  s.qname = qname;
  s.flags |= dns::rcode::NxDomain;
  s.authority = {soaRecord("example.org", soa_ttl, minimum)};
  return s;
}

class CacheTest : public ::testing::Test {
 protected:
  // Far from the clock's epoch so that "earlier" times stay valid.
  const Clock::time_point t0_ = Clock::time_point{} + std::chrono::hours(1000);
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(dns::kMaxMessageSize);

  Clock::time_point at(int64_t seconds) const { return t0_ + std::chrono::seconds(seconds); }

  /// Inserts `spec` as the answer to a query for spec.qname with options `o` at time `t`.
  uint32_t put(Cache& c, const ResponseSpec& spec, QueryOptions o = {}, int64_t t = 0) {
    o.qtype = spec.qtype;
    o.qclass = spec.qclass;
    TestQuery q = makeQuery(spec.qname, o);
    TestResponse r = makeResponse(spec);
    return c.insert(q.q, dns::keyHash(q.q), r.view(), r.r, at(t));
  }

  LookupResult get(Cache& c, const TestQuery& q, int64_t t, size_t limit = 65535) {
    return c.lookup(q.view(), q.q, dns::keyHash(q.q), at(t), limit, dns::MutableBytes(buf_));
  }

  Output out(const LookupResult& res) { return readOutput(buf_, res.length); }
};

inline uint64_t load(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

}  // namespace nld::cache::testing
