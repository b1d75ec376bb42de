#pragma once
// Test-only DNS packet helpers for the cache tests: client queries via dns::buildQuery and a
// small upstream-response builder (uncompressed names). Allocates freely; never on a test's
// measured hit path.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dns/message.h"

namespace nld::cache::testing {

inline dns::Name name(const std::string& text) {
  auto n = dns::Name::fromString(text);
  EXPECT_TRUE(n.has_value()) << text;
  return n.value_or(dns::Name{});
}

struct QueryOptions {
  uint16_t id = 0x1234;
  uint16_t qtype = dns::type::A;
  uint16_t qclass = dns::cls::IN;
  uint16_t flags = dns::flag::RD;  // RD, CD, AD
  bool edns = false;
  bool dnssec_ok = false;
  uint16_t udp_size = 1232;
};

struct TestQuery {
  std::vector<uint8_t> pkt;
  dns::Query q;
  dns::ByteView view() const { return dns::ByteView(pkt); }
};

inline TestQuery makeQuery(const std::string& qname, QueryOptions o = {}) {
  TestQuery t;
  t.pkt.resize(600);
  size_t len = dns::buildQuery(o.id, name(qname), o.qtype, o.qclass, o.flags, o.edns, o.udp_size,
                               o.dnssec_ok, dns::MutableBytes(t.pkt));
  EXPECT_GT(len, 0u);
  t.pkt.resize(len);
  EXPECT_EQ(dns::parseQuery(t.view(), t.q), dns::QueryStatus::Ok);
  return t;
}

struct Rr {
  std::string owner;
  uint16_t type = dns::type::A;
  uint32_t ttl = 300;
  std::vector<uint8_t> rdata = {192, 0, 2, 1};
};

inline std::vector<uint8_t> wireName(const std::string& text) {
  dns::Name n = name(text);
  return std::vector<uint8_t>(n.data.begin(), n.data.begin() + n.len);
}

inline void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
inline void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}

inline Rr aRecord(const std::string& owner, uint32_t ttl, uint8_t last_octet = 1) {
  return Rr{owner, dns::type::A, ttl, {192, 0, 2, last_octet}};
}

inline Rr soaRecord(const std::string& zone, uint32_t ttl, uint32_t minimum) {
  Rr rr{zone, dns::type::SOA, ttl, {}};
  auto m = wireName("ns1." + zone);
  auto r = wireName("hostmaster." + zone);
  rr.rdata.insert(rr.rdata.end(), m.begin(), m.end());
  rr.rdata.insert(rr.rdata.end(), r.begin(), r.end());
  put32(rr.rdata, 2024010101);  // serial
  put32(rr.rdata, 7200);        // refresh
  put32(rr.rdata, 3600);        // retry
  put32(rr.rdata, 1209600);     // expire
  put32(rr.rdata, minimum);
  return rr;
}

inline Rr nsRecord(const std::string& zone, uint32_t ttl) {
  return Rr{zone, dns::type::NS, ttl, wireName("ns1." + zone)};
}

struct ResponseSpec {
  std::string qname = "example.org";
  uint16_t qtype = dns::type::A;
  uint16_t qclass = dns::cls::IN;
  uint16_t id = 0x4321;
  uint16_t flags = dns::flag::QR | dns::flag::RD | dns::flag::RA;  // rcode in the low 4 bits
  std::vector<Rr> answer, authority, additional;
  bool opt = false;  // upstream OPT at the end of the additional section
  bool opt_do = false;
};

struct TestResponse {
  std::vector<uint8_t> pkt;
  dns::Response r;
  dns::ByteView view() const { return dns::ByteView(pkt); }
};

inline TestResponse makeResponse(const ResponseSpec& s) {
  TestResponse t;
  auto& v = t.pkt;
  put16(v, s.id);
  put16(v, s.flags);
  put16(v, 1);
  put16(v, static_cast<uint16_t>(s.answer.size()));
  put16(v, static_cast<uint16_t>(s.authority.size()));
  put16(v, static_cast<uint16_t>(s.additional.size() + (s.opt ? 1 : 0)));
  auto q = wireName(s.qname);
  v.insert(v.end(), q.begin(), q.end());
  put16(v, s.qtype);
  put16(v, s.qclass);
  for (const auto* section : {&s.answer, &s.authority, &s.additional}) {
    for (const Rr& rr : *section) {
      auto o = wireName(rr.owner);
      v.insert(v.end(), o.begin(), o.end());
      put16(v, rr.type);
      put16(v, dns::cls::IN);
      put32(v, rr.ttl);
      put16(v, static_cast<uint16_t>(rr.rdata.size()));
      v.insert(v.end(), rr.rdata.begin(), rr.rdata.end());
    }
  }
  if (s.opt) {
    v.push_back(0);
    put16(v, dns::type::OPT);
    put16(v, 4096);
    put32(v, s.opt_do ? 0x8000u : 0u);
    put16(v, 0);
  }
  EXPECT_EQ(dns::parseResponse(t.view(), t.r), dns::Error::None);
  return t;
}

/// A parsed response written by the cache, for assertions.
struct Output {
  std::vector<uint8_t> pkt;
  dns::Response r;
  std::vector<uint32_t> ttls;  // every non-OPT RR, in order
  dns::Header header() const { return dns::Header::read(dns::ByteView(pkt)); }
};

inline Output readOutput(const std::vector<uint8_t>& buf, size_t len) {
  Output o;
  o.pkt.assign(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(len));
  EXPECT_EQ(dns::parseResponse(dns::ByteView(o.pkt), o.r), dns::Error::None);
  for (const auto& rr : o.r.rrs) o.ttls.push_back(dns::load32(o.pkt.data() + rr.ttl_offset));
  return o;
}

}  // namespace nld::cache::testing
