#pragma once
// Test-only DNS packet helpers for the cache tests: client queries via dns::buildQuery and
// upstream responses (uncompressed names) written with the shared support/packet_builder.h.
// Allocates freely; never on a test's measured hit path.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "dns/message.h"
#include "support/packet_builder.h"

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
  EXPECT_EQ(dns::parseQuery(t.view(), t.q), dns::QueryStatus::kOk);
  return t;
}

struct Rr {
  std::string owner;
  uint16_t type = dns::type::A;
  uint32_t ttl = 300;
  std::vector<uint8_t> rdata = {192, 0, 2, 1};
};

using nld::test::wireName;

inline Rr aRecord(const std::string& owner, uint32_t ttl, uint8_t last_octet = 1) {
  return Rr{owner, dns::type::A, ttl, {192, 0, 2, last_octet}};
}

inline Rr soaRecord(const std::string& zone, uint32_t ttl, uint32_t minimum) {
  Rr rr{zone, dns::type::SOA, ttl, {}};
  nld::test::PacketBuilder b;
  b.name("ns1." + zone).name("hostmaster." + zone);
  b.u32(2024010101).u32(7200).u32(3600).u32(1209600);  // serial, refresh, retry, expire
  b.u32(minimum);
  rr.rdata = b.bytes();
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
  nld::test::PacketBuilder b;
  b.header(s.id, s.flags, 1, static_cast<uint16_t>(s.answer.size()),
           static_cast<uint16_t>(s.authority.size()),
           static_cast<uint16_t>(s.additional.size() + (s.opt ? 1 : 0)));
  b.question(s.qname, s.qtype, s.qclass);
  for (const auto* section : {&s.answer, &s.authority, &s.additional}) {
    for (const Rr& rr : *section) b.name(rr.owner).rrBody(rr.type, dns::cls::IN, rr.ttl, rr.rdata);
  }
  if (s.opt) b.opt(4096, 0, 0, s.opt_do);
  TestResponse t;
  t.pkt = b.bytes();
  EXPECT_EQ(dns::parseResponse(t.view(), t.r), dns::Error::kNone);
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
  EXPECT_EQ(dns::parseResponse(dns::ByteView(o.pkt), o.r), dns::Error::kNone);
  for (const auto& rr : o.r.rrs) o.ttls.push_back(dns::load32(o.pkt.data() + rr.ttl_offset));
  return o;
}

}  // namespace nld::cache::testing
