// TTL and placement rules (CoreDNS cache plugin clamps, RFC 2308), checked through Cache::insert's
// returned duration and through direct decide() calls.
#include "cache/ttl_policy.h"

#include <gtest/gtest.h>

#include "cache_fixture.h"

namespace nld::cache::testing {
namespace {

using TtlPolicy = CacheTest;

TEST_F(TtlPolicy, SuccessTtlIsMinimumRecordTtl) {
  Cache c(Settings{});
  ResponseSpec s = positive("a.example.org", 600);
  s.answer.push_back(aRecord("a.example.org", 250, 2));
  s.additional.push_back(aRecord("ns.example.org", 400, 3));
  EXPECT_EQ(put(c, s), 250u);
}

TEST_F(TtlPolicy, SuccessMinTtlRaisesShortTtls) {
  Cache c(Settings{});
  EXPECT_EQ(put(c, positive("a.example.org", 1)), 5u);
  EXPECT_EQ(put(c, positive("b.example.org", 0)), 5u);
  Settings s;
  s.success_min_ttl = 30;
  Cache c2(s);
  EXPECT_EQ(put(c2, positive("a.example.org", 10)), 30u);
}

TEST_F(TtlPolicy, SuccessMaxTtlCapsLongTtls) {
  Cache c(Settings{});
  EXPECT_EQ(put(c, positive("a.example.org", 86400)), 3600u);
  Settings s;
  s.success_max_ttl = 60;
  Cache c2(s);
  EXPECT_EQ(put(c2, positive("a.example.org", 86400)), 60u);
}

TEST_F(TtlPolicy, ConfiguredMaxAboveOneHourTakesEffect) {
  Settings s;
  s.success_max_ttl = 7200;
  s.denial_max_ttl = 7200;
  Cache c(s);
  EXPECT_EQ(put(c, positive("a.example.org", 5000)), 5000u);
  EXPECT_EQ(put(c, positive("b.example.org", 86400)), 7200u);
  EXPECT_EQ(put(c, nxdomain("c.example.org", 5400, 6000)), 5400u);
}

TEST_F(TtlPolicy, NoErrorWithoutRecordsGetsFiveSeconds) {
  Settings s;
  s.success_min_ttl = 0;
  Cache c(s);
  ResponseSpec empty;
  empty.qname = "a.example.org";
  EXPECT_EQ(put(c, empty), 5u);
}

TEST_F(TtlPolicy, NegativeTtlIsMinOfSoaTtlAndMinimum) {
  Cache c(Settings{});
  EXPECT_EQ(put(c, nxdomain("a.example.org", 900, 60)), 60u);         // MINIMUM smaller (RFC 2308)
  EXPECT_EQ(put(c, nxdomain("b.example.org", 30, 300)), 30u);         // SOA TTL smaller
  EXPECT_EQ(put(c, nxdomain("c.example.org", 1, 1)), 5u);             // denial MINTTL
  EXPECT_EQ(put(c, nxdomain("d.example.org", 86400, 86400)), 1800u);  // denial TTL
}

TEST_F(TtlPolicy, NoDataIsDenialWithNegativeTtl) {
  Cache c(Settings{});
  ResponseSpec s = nxdomain("a.example.org", 900, 120);
  s.flags = dns::flag::QR | dns::flag::RA;  // NOERROR, empty answer, SOA
  EXPECT_EQ(put(c, s), 120u);
  EXPECT_EQ(c.stats().entries_denial.load(), 1u);
  EXPECT_EQ(c.stats().entries_success.load(), 0u);
}

TEST_F(TtlPolicy, DenialClampsAreConfigurable) {
  Settings s;
  s.denial_min_ttl = 100;
  s.denial_max_ttl = 200;
  Cache c(s);
  EXPECT_EQ(put(c, nxdomain("a.example.org", 10, 10)), 100u);
  EXPECT_EQ(put(c, nxdomain("b.example.org", 900, 900)), 200u);
}

TEST_F(TtlPolicy, ServfailCachedForServfailDuration) {
  ResponseSpec sf;
  sf.qname = "a.example.org";
  sf.flags |= dns::rcode::ServFail;
  Cache c(Settings{});
  EXPECT_EQ(put(c, sf), 5u);
  EXPECT_EQ(c.stats().entries_denial.load(), 1u);
  Settings s;
  s.servfail_ttl = 0;
  Cache off(s);
  EXPECT_EQ(put(off, sf), 0u);
  EXPECT_EQ(off.stats().entries_denial.load(), 0u);
  s.servfail_ttl = 120;
  Cache longer(s);
  EXPECT_EQ(put(longer, sf), 120u);
}

TEST_F(TtlPolicy, DelegationGetsShortSuccessTtl) {
  Cache c(Settings{});
  ResponseSpec s;
  s.qname = "a.sub.example.org";
  s.authority = {nsRecord("sub.example.org", 86400)};
  EXPECT_EQ(put(c, s), 5u);
  EXPECT_EQ(c.stats().entries_success.load(), 1u);
}

TEST_F(TtlPolicy, UncacheableResponsesAreNotStored) {
  Cache c(Settings{});
  ResponseSpec refused = positive("a.example.org", 300);
  refused.flags |= dns::rcode::Refused;
  EXPECT_EQ(put(c, refused), 0u);
  ResponseSpec nx_no_soa;
  nx_no_soa.qname = "b.example.org";
  nx_no_soa.flags |= dns::rcode::NxDomain;
  EXPECT_EQ(put(c, nx_no_soa), 0u);
  ResponseSpec axfr = positive("example.org", 300);
  axfr.qtype = dns::type::AXFR;
  EXPECT_EQ(put(c, axfr), 0u);
  ResponseSpec tc = positive("c.example.org", 300);
  tc.flags |= dns::flag::TC;
  EXPECT_EQ(put(c, tc), 0u);
  EXPECT_EQ(c.stats().entries_success.load() + c.stats().entries_denial.load(), 0u);
  EXPECT_EQ(c.stats().drops.load(), 0u);
}

TEST_F(TtlPolicy, MismatchedQuestionIsDropped) {
  Cache c(Settings{});
  TestQuery q = makeQuery("a.example.org");
  TestResponse other = makeResponse(positive("b.example.org", 300));
  EXPECT_EQ(c.insert(q.q, dns::keyHash(q.q), other.view(), other.r, at(0)), 0u);
  ResponseSpec aaaa = positive("a.example.org", 300);
  aaaa.qtype = dns::type::AAAA;
  TestResponse wrong_type = makeResponse(aaaa);
  EXPECT_EQ(c.insert(q.q, dns::keyHash(q.q), wrong_type.view(), wrong_type.r, at(0)), 0u);
  EXPECT_EQ(c.stats().drops.load(), 2u);
  EXPECT_EQ(get(c, q, 0).kind, Kind::kMiss);
}

TEST(TtlPolicyDecide, TopBitTtlsCountAsZero) {
  dns::Response r;
  r.rrs.push_back(dns::RrInfo{});
  r.min_ttl = 0x80000001u;
  Settings s;
  s.success_min_ttl = 0;
  Decision d = decide(s, r, dns::ResponseType::kNoError);
  EXPECT_EQ(d.placement, Placement::kSuccess);
  EXPECT_EQ(d.duration, 0u);
}

TEST(TtlPolicyDecide, ClampTtl) {
  EXPECT_EQ(clampTtl(1, 5, 10), 5u);
  EXPECT_EQ(clampTtl(50, 5, 10), 10u);
  EXPECT_EQ(clampTtl(7, 5, 10), 7u);
  EXPECT_EQ(clampTtl(7, 20, 10), 10u);  // max wins like CoreDNS
}

}  // namespace
}  // namespace nld::cache::testing

namespace nld::cache::testing {
namespace {

TEST(TtlPolicyCap, CapsEveryRecordButNotOpt) {
  ResponseSpec s = positive("www.example.org", 600);
  s.answer.push_back(aRecord("www.example.org", 20, 2));
  s.additional.push_back(aRecord("ns.example.org", 0x80000005u, 3));
  s.opt = true;
  s.opt_do = true;
  TestResponse r = makeResponse(s);
  capTtls(dns::MutableBytes(r.pkt), r.r, 300);
  dns::Response again;
  ASSERT_EQ(dns::parseResponse(dns::ByteView(r.pkt), again), dns::Error::kNone);
  std::vector<uint32_t> ttls;
  for (const auto& rr : again.rrs) ttls.push_back(dns::load32(r.pkt.data() + rr.ttl_offset));
  EXPECT_EQ(ttls, (std::vector<uint32_t>{300, 20, 0}));
  EXPECT_TRUE(again.edns.present);
  EXPECT_TRUE(again.edns.dnssec_ok);  // OPT's TTL field (flags) untouched
}

}  // namespace
}  // namespace nld::cache::testing
