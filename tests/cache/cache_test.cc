// Cache hits: TTL countdown, ID and 0x20 case, flags, key fields, OPT handling and truncation.
#include "cache/cache.h"

#include <gtest/gtest.h>

#include <cstring>

#include "cache_fixture.h"

namespace nld::cache::testing {
namespace {

TEST_F(CacheTest, MissThenHit) {
  Cache c(Settings{});
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(get(c, q, 0).kind, Kind::kMiss);
  EXPECT_EQ(put(c, positive("www.example.org", 300)), 300u);
  LookupResult res = get(c, q, 1);
  EXPECT_EQ(res.kind, Kind::kHit);
  EXPECT_FALSE(res.denial);
  EXPECT_FALSE(res.prefetch);
  Output o = out(res);
  ASSERT_EQ(o.r.rrs.size(), 1u);
  EXPECT_EQ(o.header().ancount, 1u);
  EXPECT_EQ(load(c.stats().requests), 2u);
  EXPECT_EQ(load(c.stats().misses), 1u);
  EXPECT_EQ(load(c.stats().hits_success), 1u);
  EXPECT_EQ(load(c.stats().entries_success), 1u);
}

TEST_F(CacheTest, TtlCountsDownAndEntryExpires) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(out(get(c, q, 0)).ttls, std::vector<uint32_t>{300});
  EXPECT_EQ(out(get(c, q, 100)).ttls, std::vector<uint32_t>{200});
  // Sub-second elapsed time is floored.
  LookupResult res =
      c.lookup(q.view(), q.q, dns::keyHash(q.q), at(100) + std::chrono::milliseconds(999), 65535,
               dns::MutableBytes(buf_));
  EXPECT_EQ(out(res).ttls, std::vector<uint32_t>{200});
  EXPECT_EQ(out(get(c, q, 299)).ttls, std::vector<uint32_t>{1});
  EXPECT_EQ(get(c, q, 300).kind, Kind::kMiss);
  EXPECT_EQ(load(c.stats().entries_success), 0u);  // dead entry removed on lookup
}

TEST_F(CacheTest, EachRecordKeepsItsOwnTtlCappedByDuration) {
  ResponseSpec s = positive("www.example.org", 300);
  s.answer.push_back(aRecord("www.example.org", 900, 2));
  s.additional.push_back(aRecord("ns.example.org", 3, 3));
  Settings min;
  min.success_min_ttl = 60;
  Cache c2(min);
  ASSERT_EQ(put(c2, s), 60u);  // min TTL 3 raised to 60
  TestQuery q = makeQuery("www.example.org");
  EXPECT_EQ(out(get(c2, q, 10)).ttls, (std::vector<uint32_t>{50, 50, 0}));
}

TEST_F(CacheTest, KeepTtlReturnsOriginalTtls) {
  Settings s;
  s.keepttl = true;
  Cache c(s);
  ResponseSpec r = positive("www.example.org", 300);
  r.answer.push_back(aRecord("www.example.org", 900, 2));
  put(c, r);
  EXPECT_EQ(out(get(c, makeQuery("www.example.org"), 100)).ttls, (std::vector<uint32_t>{300, 900}));
}

TEST_F(CacheTest, IdAndQuestionCaseComeFromTheClient) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  QueryOptions o;
  o.id = 0xbeef;
  TestQuery q = makeQuery("wWw.ExAmPle.ORG", o);
  LookupResult res = get(c, q, 0);
  ASSERT_EQ(res.kind, Kind::kHit);
  Output out_pkt = out(res);
  EXPECT_EQ(out_pkt.header().id, 0xbeef);
  auto client_name = wireName("wWw.ExAmPle.ORG");
  ASSERT_GE(out_pkt.pkt.size(), 12 + client_name.size());
  EXPECT_EQ(0, std::memcmp(out_pkt.pkt.data() + 12, client_name.data(), client_name.size()));
  // Record owners keep the case of the response that populated the cache.
  auto stored_owner = wireName("www.example.org");
  size_t owner_at = 12 + client_name.size() + 4;
  EXPECT_EQ(0,
            std::memcmp(out_pkt.pkt.data() + owner_at, stored_owner.data(), stored_owner.size()));
  // A different client gets its own ID and case from the same entry.
  o.id = 7;
  TestQuery q2 = makeQuery("WWW.EXAMPLE.ORG", o);
  Output second = out(get(c, q2, 1));
  EXPECT_EQ(second.header().id, 7);
  EXPECT_TRUE(second.r.question.name.equalsIgnoreCase(name("www.example.org")));
  EXPECT_EQ(second.r.question.name.toString(), "WWW.EXAMPLE.ORG.");
}

TEST_F(CacheTest, FlagsOnHit) {
  Cache c(Settings{});
  ResponseSpec s = positive("www.example.org", 300);
  s.flags = dns::flag::QR | dns::flag::RD | dns::flag::RA;
  put(c, s);
  QueryOptions o;
  o.flags = 0;  // client did not set RD
  dns::Header h = out(get(c, makeQuery("www.example.org", o), 0)).header();
  EXPECT_TRUE(h.qr());
  EXPECT_TRUE(h.aa());  // drop-in parity: AA=1 on every hit
  EXPECT_FALSE(h.rd());
  EXPECT_TRUE(h.ra());
  EXPECT_FALSE(h.tc());
  EXPECT_EQ(h.rcode(), 0);
  EXPECT_EQ(h.opcode(), 0);
}

TEST_F(CacheTest, NxdomainHitCarriesRcodeAndIsDenial) {
  Cache c(Settings{});
  ASSERT_EQ(put(c, nxdomain("nope.example.org", 600, 60)), 60u);
  LookupResult res = get(c, makeQuery("nope.example.org"), 10);
  ASSERT_EQ(res.kind, Kind::kHit);
  EXPECT_TRUE(res.denial);
  Output o = out(res);
  EXPECT_EQ(o.header().rcode(), dns::rcode::NxDomain);
  EXPECT_EQ(o.header().nscount, 1u);
  EXPECT_EQ(o.ttls, std::vector<uint32_t>{50});  // min(600, duration 60) - 10
  EXPECT_EQ(load(c.stats().hits_denial), 1u);
}

TEST_F(CacheTest, AdOnlyWhenClientAskedWithDoOrAd) {
  Cache c(Settings{});
  ResponseSpec s = positive("www.example.org", 300);
  s.flags |= dns::flag::AD;
  put(c, s);
  QueryOptions plain;
  EXPECT_FALSE(out(get(c, makeQuery("www.example.org", plain), 0)).header().ad());
  QueryOptions ad;
  ad.flags = dns::flag::RD | dns::flag::AD;
  EXPECT_TRUE(out(get(c, makeQuery("www.example.org", ad), 0)).header().ad());
  // DO is part of the key: store a DO answer and read it back with DO.
  QueryOptions with_do;
  with_do.edns = true;
  with_do.dnssec_ok = true;
  put(c, s, with_do);
  EXPECT_TRUE(out(get(c, makeQuery("www.example.org", with_do), 0)).header().ad());
  // Upstream did not set AD: never set on a hit.
  ResponseSpec no_ad = positive("other.example.org", 300);
  put(c, no_ad);
  EXPECT_FALSE(out(get(c, makeQuery("other.example.org", ad), 0)).header().ad());
}

TEST_F(CacheTest, CdCopiedFromClient) {
  Cache c(Settings{});
  QueryOptions cd;
  cd.flags = dns::flag::RD | dns::flag::CD;
  put(c, positive("www.example.org", 300), cd);
  dns::Header h = out(get(c, makeQuery("www.example.org", cd), 0)).header();
  EXPECT_TRUE(h.cd());
  EXPECT_TRUE(h.rd());
}

TEST_F(CacheTest, DoCdAndQclassAreKeyFields) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  QueryOptions with_do;
  with_do.edns = true;
  with_do.dnssec_ok = true;
  EXPECT_EQ(get(c, makeQuery("www.example.org", with_do), 0).kind, Kind::kMiss);
  QueryOptions edns_no_do;
  edns_no_do.edns = true;
  EXPECT_EQ(get(c, makeQuery("www.example.org", edns_no_do), 0).kind, Kind::kHit);
  QueryOptions cd;
  cd.flags = dns::flag::RD | dns::flag::CD;
  EXPECT_EQ(get(c, makeQuery("www.example.org", cd), 0).kind, Kind::kMiss);
  QueryOptions chaos;
  chaos.qclass = dns::cls::CH;
  EXPECT_EQ(get(c, makeQuery("www.example.org", chaos), 0).kind, Kind::kMiss);
  QueryOptions aaaa;
  aaaa.qtype = dns::type::AAAA;
  EXPECT_EQ(get(c, makeQuery("www.example.org", aaaa), 0).kind, Kind::kMiss);
  EXPECT_EQ(get(c, makeQuery("ww.example.org"), 0).kind, Kind::kMiss);
  // A CH answer is a separate entry.
  ResponseSpec ch = positive("www.example.org", 100);
  ch.qclass = dns::cls::CH;
  put(c, ch);
  EXPECT_EQ(out(get(c, makeQuery("www.example.org", chaos), 0)).ttls, std::vector<uint32_t>{100});
  EXPECT_EQ(out(get(c, makeQuery("www.example.org"), 0)).ttls, std::vector<uint32_t>{300});
}

TEST_F(CacheTest, UpstreamOptIsNotCachedAndOursIsAppended) {
  Cache c(Settings{});
  ResponseSpec s = positive("www.example.org", 300);
  s.opt = true;
  s.additional.push_back(aRecord("ns.example.org", 300, 9));
  put(c, s);
  Output plain = out(get(c, makeQuery("www.example.org"), 0));
  EXPECT_FALSE(plain.r.edns.present);
  EXPECT_EQ(plain.header().arcount, 1u);  // the A record before the OPT stays
  QueryOptions e;
  e.edns = true;
  e.udp_size = 4096;
  Output with_opt = out(get(c, makeQuery("www.example.org", e), 0));
  ASSERT_TRUE(with_opt.r.edns.present);
  EXPECT_EQ(with_opt.r.edns.udp_size, dns::kOurUdpSize);
  EXPECT_FALSE(with_opt.r.edns.dnssec_ok);
  EXPECT_EQ(with_opt.header().arcount, 2u);
  QueryOptions d = e;
  d.dnssec_ok = true;
  put(c, s, d);
  Output with_do = out(get(c, makeQuery("www.example.org", d), 0));
  ASSERT_TRUE(with_do.r.edns.present);
  EXPECT_TRUE(with_do.r.edns.dnssec_ok);
}

ResponseSpec big(const std::string& qname, int records) {
  ResponseSpec s;
  s.qname = qname;
  for (int i = 0; i < records; ++i)
    s.answer.push_back(aRecord(qname, 300, static_cast<uint8_t>(i)));
  return s;
}

TEST_F(CacheTest, TruncatedWithTcWhenOverTheClientLimit) {
  Cache c(Settings{});
  put(c, big("www.example.org", 30));  // 30 × 31 bytes: well over 512
  TestQuery q = makeQuery("www.example.org");
  LookupResult res = get(c, q, 0, q.q.clientUdpSize());
  ASSERT_EQ(res.kind, Kind::kHit);
  Output o = out(res);
  EXPECT_LE(o.pkt.size(), 512u);
  EXPECT_TRUE(o.header().tc());
  EXPECT_EQ(o.header().ancount, 0u);
  EXPECT_EQ(o.header().qdcount, 1u);
  EXPECT_FALSE(o.r.edns.present);
  // With EDNS the OPT is re-appended after truncation.
  QueryOptions e;
  e.edns = true;
  e.udp_size = 512;
  TestQuery qe = makeQuery("www.example.org", e);
  Output oe = out(get(c, qe, 0, qe.q.clientUdpSize()));
  EXPECT_TRUE(oe.header().tc());
  EXPECT_TRUE(oe.r.edns.present);
  EXPECT_EQ(oe.header().arcount, 1u);
  // TCP limit: everything fits.
  Output tcp = out(get(c, q, 0, 65535));
  EXPECT_FALSE(tcp.header().tc());
  EXPECT_EQ(tcp.header().ancount, 30u);
  // A client with a larger UDP size gets it all too.
  e.udp_size = 1232;
  TestQuery q1232 = makeQuery("www.example.org", e);
  Output full = out(get(c, q1232, 0, q1232.q.clientUdpSize()));
  EXPECT_FALSE(full.header().tc());
  EXPECT_EQ(full.header().ancount, 30u);
}

TEST_F(CacheTest, PositiveInsertRemovesDenialEntry) {
  Cache c(Settings{});
  put(c, nxdomain("www.example.org", 600, 600));
  TestQuery q = makeQuery("www.example.org");
  EXPECT_TRUE(get(c, q, 0).denial);
  put(c, positive("www.example.org", 300), {}, 1);
  EXPECT_EQ(load(c.stats().entries_denial), 0u);
  LookupResult res = get(c, q, 2);
  EXPECT_EQ(res.kind, Kind::kHit);
  EXPECT_FALSE(res.denial);
}

TEST_F(CacheTest, DenialCheckedFirst) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  put(c, nxdomain("www.example.org", 600, 600), {}, 1);
  LookupResult res = get(c, makeQuery("www.example.org"), 2);
  EXPECT_TRUE(res.denial);
}

TEST_F(CacheTest, ReinsertReplacesEntry) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  put(c, positive("www.example.org", 100), {}, 50);
  EXPECT_EQ(load(c.stats().entries_success), 1u);
  EXPECT_EQ(out(get(c, makeQuery("www.example.org"), 60)).ttls, std::vector<uint32_t>{90});
}

TEST_F(CacheTest, DisabledZonesAreNotStored) {
  Settings s;
  s.disable_success = {name("example.org")};
  s.disable_denial = {name("example.net")};
  Cache c(s);
  EXPECT_EQ(put(c, positive("www.example.org", 300)), 0u);
  EXPECT_EQ(put(c, positive("example.org", 300)), 0u);
  EXPECT_EQ(put(c, positive("www.example.com", 300)), 300u);
  EXPECT_EQ(put(c, nxdomain("nx.example.org", 600, 600)), 600u);  // denial not disabled here
  ResponseSpec nx = nxdomain("nx.example.net", 600, 600);
  EXPECT_EQ(put(c, nx), 0u);
  EXPECT_EQ(put(c, positive("www.example.net", 300)), 300u);
  EXPECT_EQ(get(c, makeQuery("www.example.org"), 0).kind, Kind::kMiss);
}

TEST_F(CacheTest, SmallOutputBufferIsAMissNotACrash) {
  Cache c(Settings{});
  put(c, positive("www.example.org", 300));
  TestQuery q = makeQuery("www.example.org");
  std::vector<uint8_t> tiny(20);
  LookupResult res =
      c.lookup(q.view(), q.q, dns::keyHash(q.q), at(0), 512, dns::MutableBytes(tiny));
  EXPECT_EQ(res.kind, Kind::kMiss);
}

TEST_F(CacheTest, InvalidSettingsThrow) {
  Settings s;
  s.partitions = 0;
  EXPECT_THROW(Cache{s}, std::invalid_argument);
  s = Settings{};
  s.servfail_ttl = 301;
  EXPECT_THROW(Cache{s}, std::invalid_argument);
  s = Settings{};
  s.prefetch_percentage = 101;
  EXPECT_THROW(Cache{s}, std::invalid_argument);
}

TEST_F(CacheTest, MovedCacheKeepsEntriesAndStatsAddress) {
  Cache c(Settings{});
  const Stats* st = &c.stats();
  put(c, positive("www.example.org", 300));
  Cache moved(std::move(c));
  EXPECT_EQ(&moved.stats(), st);
  EXPECT_EQ(get(moved, makeQuery("www.example.org"), 0).kind, Kind::kHit);
}

}  // namespace
}  // namespace nld::cache::testing
