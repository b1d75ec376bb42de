#include "dns/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dnspython_packets.h"
#include "support/packet_builder.h"

namespace nld::dns {
namespace {

using test::PacketBuilder;
using test::wireName;

template <size_t N>
std::vector<uint8_t> vec(const uint8_t (&a)[N]) {
  return std::vector<uint8_t>(a, a + N);
}
ByteView view(const std::vector<uint8_t>& v) { return ByteView(v.data(), v.size()); }

Name mustName(std::string_view s) {
  auto n = Name::fromString(s);
  EXPECT_TRUE(n.has_value()) << s;
  return n.value_or(Name{});
}

QueryStatus parseQ(const std::vector<uint8_t>& v, Query& q) { return parseQuery(view(v), q); }

// ---------------------------------------------------------------------------------------------
// parseQuery

TEST(ParseQuery, DnspythonQueryWithEdns) {
  auto pkt = vec(testdata::kDnspythonQueryEdns);
  Query q;
  ASSERT_EQ(parseQ(pkt, q), QueryStatus::kOk);
  EXPECT_EQ(q.header.id, 0x1234);
  EXPECT_TRUE(q.header.rd());
  EXPECT_EQ(q.question.name.toString(), "Example.COM.");
  EXPECT_EQ(q.question.qtype, type::A);
  EXPECT_EQ(q.question.qclass, cls::IN);
  EXPECT_EQ(q.question.name_offset, 12u);
  EXPECT_EQ(q.question.end, 29u);
  ASSERT_TRUE(q.edns.present);
  EXPECT_EQ(q.edns.udp_size, 4096);
  EXPECT_TRUE(q.edns.dnssec_ok);
  EXPECT_EQ(q.edns.version, 0);
  EXPECT_EQ(q.edns.ext_rcode, 0);
  EXPECT_EQ(q.edns.rr_offset, 29u);
  EXPECT_EQ(q.edns.rr_len, 11u);
  EXPECT_EQ(q.clientUdpSize(), 4096);
}

TEST(ParseQuery, DnspythonQueryWithoutEdns) {
  auto pkt = vec(testdata::kDnspythonQueryPlain);
  Query q;
  ASSERT_EQ(parseQ(pkt, q), QueryStatus::kOk);
  EXPECT_EQ(q.question.name.toString(), "www.Example.org.");
  EXPECT_EQ(q.question.qtype, type::AAAA);
  EXPECT_FALSE(q.edns.present);
  EXPECT_EQ(q.clientUdpSize(), 512);
}

TEST(ParseQuery, EdnsFieldsAndSmallUdpSize) {
  PacketBuilder b;
  b.header(1, flag::RD | flag::CD, 1, 0, 0, 1).question("a.b", type::TXT).opt(100, 0, 0, false);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kOk);
  EXPECT_TRUE(q.edns.present);
  EXPECT_FALSE(q.edns.dnssec_ok);
  EXPECT_EQ(q.edns.udp_size, 100);
  EXPECT_EQ(q.clientUdpSize(), 512);
  EXPECT_TRUE(q.header.cd());
}

TEST(ParseQuery, OptionsAndOtherAdditionalRecords) {
  // COOKIE option (8-byte client cookie), then a TSIG-like record that must be skipped.
  PacketBuilder b;
  b.header(2, 0, 1, 0, 0, 2)
      .question("example.org", type::A)
      .opt(1232, 0, 0, true, {0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8})
      .name("key.example")
      .rrBody(250, 255, 0, {1, 2, 3});
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kOk);
  EXPECT_TRUE(q.edns.present);
  EXPECT_TRUE(q.edns.dnssec_ok);
  EXPECT_EQ(q.edns.rr_len, 11u + 12u);
  // Trailing garbage after the last record is ignored.
  auto with_trailer = b.bytes();
  with_trailer.push_back(0xFF);
  EXPECT_EQ(parseQ(with_trailer, q), QueryStatus::kOk);
}

TEST(ParseQuery, AnswerAndAuthorityRecordsAllowedOnce) {
  PacketBuilder b;
  b.header(3, 0, 1, 1, 1, 0)
      .question("example.org", type::A)
      .pointer(12)
      .rrBody(type::A, cls::IN, 5, {1, 2, 3, 4})
      .pointer(12)
      .rrBody(type::A, cls::IN, 5, {1, 2, 3, 4});
  Query q;
  EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kOk);
}

TEST(ParseQuery, DropShortAndResponses) {
  auto pkt = vec(testdata::kDnspythonQueryPlain);
  Query q;
  for (size_t n = 0; n < kHeaderSize; ++n) {
    EXPECT_EQ(parseQuery(ByteView(pkt.data(), n), q), QueryStatus::kDrop) << n;
  }
  pkt[2] |= 0x80;  // QR=1
  EXPECT_EQ(parseQ(pkt, q), QueryStatus::kDrop);
}

TEST(ParseQuery, OpcodesOtherThanQueryAreNotImp) {
  for (uint16_t opcode : {1, 2, 4, 5, 15}) {
    PacketBuilder b;
    b.header(4, static_cast<uint16_t>(opcode << 11), 1, 0, 0, 0)
        .question("Zone.example", type::SOA);
    Query q;
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kNotImp) << opcode;
    EXPECT_EQ(q.question.name.toString(), "Zone.example.");  // parsed for the echo
    EXPECT_EQ(q.header.opcode(), opcode);
  }
}

TEST(ParseQuery, CountsOutOfRangeAreFormErr) {
  struct Case {
    uint16_t qd, an, ns, ar;
    bool question_filled;
  };
  for (const Case& c : {Case{0, 0, 0, 0, false}, Case{2, 0, 0, 0, true}, Case{1, 2, 0, 0, true},
                        Case{1, 0, 2, 0, true}, Case{1, 0, 0, 3, true}}) {
    PacketBuilder b;
    b.header(5, flag::RD, c.qd, c.an, c.ns, c.ar).question("example.org", type::A);
    if (c.qd == 2) b.question("example.net", type::A);
    Query q;
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr) << c.qd << c.an << c.ns << c.ar;
    EXPECT_EQ(q.question.name.len > 0, c.question_filled);
  }
}

TEST(ParseQuery, BadQuestionIsFormErr) {
  {
    PacketBuilder b;  // forward pointer in QNAME
    b.header(6, 0, 1, 0, 0, 0).pointer(14).u8(0).u16(1).u16(1);
    Query q;
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
    EXPECT_EQ(q.question.name.len, 0);
  }
  {
    PacketBuilder b;  // QTYPE/QCLASS missing
    b.header(6, 0, 1, 0, 0, 0).name("example.org").u16(1);
    Query q;
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
    EXPECT_EQ(q.question.name.len, 0);
  }
}

TEST(ParseQuery, OptProblemsAreFormErr) {
  Query q;
  {
    PacketBuilder b;  // two OPTs
    b.header(7, 0, 1, 0, 0, 2).question("example.org", type::A).opt(1232).opt(1232);
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
    EXPECT_FALSE(q.edns.present);
    EXPECT_EQ(q.question.name.toString(), "example.org.");  // question still echoed
  }
  {
    PacketBuilder b;  // OPT not owned by root
    b.header(7, 0, 1, 0, 0, 1)
        .question("example.org", type::A)
        .pointer(12)
        .rrBody(type::OPT, 1232, 0, {});
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
    EXPECT_FALSE(q.edns.present);
  }
  {
    PacketBuilder b;  // OPT in the answer section
    b.header(7, 0, 1, 1, 0, 0).question("example.org", type::A).opt(1232);
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
  {
    PacketBuilder b;  // OPT in the authority section
    b.header(7, 0, 1, 0, 1, 0).question("example.org", type::A).opt(1232);
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
  {
    PacketBuilder b;  // option length runs past RDLENGTH
    b.header(7, 0, 1, 0, 0, 1)
        .question("example.org", type::A)
        .opt(1232, 0, 0, false, {0, 10, 0, 9, 1, 2, 3});
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
  {
    PacketBuilder b;  // partial option header
    b.header(7, 0, 1, 0, 0, 1).question("example.org", type::A).opt(1232, 0, 0, false, {0, 10, 0});
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
  {
    PacketBuilder b;  // RDLENGTH past the end of the message
    b.header(7, 0, 1, 0, 0, 1)
        .question("example.org", type::A)
        .u8(0)
        .u16(type::OPT)
        .u16(512)
        .u32(0)
        .u16(20)
        .raw({1, 2});
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
  {
    PacketBuilder b;  // garbage answer record
    b.header(7, 0, 1, 1, 0, 0).question("example.org", type::A).u8(0x80);
    EXPECT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  }
}

TEST(ParseQuery, EdnsVersionOneIsBadVers) {
  PacketBuilder b;
  b.header(8, flag::RD, 1, 0, 0, 1).question("Example.org", type::A).opt(4096, 0, 1, true);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kBadVers);
  EXPECT_TRUE(q.edns.present);
  EXPECT_EQ(q.edns.version, 1);
  EXPECT_TRUE(q.edns.dnssec_ok);
}

TEST(ParseQuery, EveryPrefixOfAValidQueryFails) {
  for (const auto& full :
       {vec(testdata::kDnspythonQueryEdns), vec(testdata::kDnspythonQueryPlain)}) {
    for (size_t n = 0; n < full.size(); ++n) {
      std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(n));
      Query q;
      const QueryStatus s = parseQ(prefix, q);
      EXPECT_NE(s, QueryStatus::kOk) << n;
      EXPECT_EQ(s, n < kHeaderSize ? QueryStatus::kDrop : QueryStatus::kFormErr) << n;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// parseResponse

TEST(ParseResponse, DnspythonCnameResponse) {
  auto pkt = vec(testdata::kDnspythonResponseCname);
  Response r;
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  EXPECT_EQ(r.header.id, 7);
  EXPECT_EQ(r.question.name.toString(), "www.example.com.");
  ASSERT_EQ(r.rrs.size(), 5u);
  const uint32_t ttls[] = {300, 60, 60, 3600, 120};
  const uint16_t types[] = {type::CNAME, type::A, type::A, type::NS, type::A};
  const uint8_t sections[] = {0, 0, 0, 1, 2};
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(load32(pkt.data() + r.rrs[i].ttl_offset), ttls[i]) << i;
    EXPECT_EQ(r.rrs[i].type, types[i]) << i;
    EXPECT_EQ(r.rrs[i].section, sections[i]) << i;
  }
  EXPECT_EQ(r.min_ttl, 60u);
  EXPECT_TRUE(r.has_ns);
  EXPECT_FALSE(r.has_soa);
  EXPECT_TRUE(r.edns.present);
  EXPECT_EQ(r.edns.rr_offset + r.edns.rr_len, pkt.size());
  EXPECT_EQ(r.end, pkt.size());
  EXPECT_EQ(classify(r), ResponseType::kNoError);
  // rrs is cleared and refilled on reuse.
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  EXPECT_EQ(r.rrs.size(), 5u);
}

TEST(ParseResponse, SoaMinimumExtraction) {
  auto pkt = vec(testdata::kDnspythonResponseNx);
  Response r;
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  EXPECT_TRUE(r.has_soa);
  EXPECT_EQ(r.soa_ttl, 900u);
  EXPECT_EQ(r.soa_minimum, 300u);
  EXPECT_EQ(r.min_ttl, 900u);
  EXPECT_FALSE(r.has_ns);
  EXPECT_FALSE(r.edns.present);
  EXPECT_EQ(classify(r), ResponseType::kNameError);
}

TEST(ParseResponse, EveryPrefixOfAValidResponseFails) {
  for (const auto& full :
       {vec(testdata::kDnspythonResponseCname), vec(testdata::kDnspythonResponseNx)}) {
    for (size_t n = 0; n < full.size(); ++n) {
      std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(n));
      Response r;
      EXPECT_NE(parseResponse(view(prefix), r), Error::kNone) << n;
    }
  }
}

TEST(ParseResponse, HeaderRequirements) {
  Response r;
  auto pkt = vec(testdata::kDnspythonResponseNx);
  auto query = pkt;
  query[2] &= 0x7F;  // QR=0
  EXPECT_EQ(parseResponse(view(query), r), Error::kBadCount);
  for (uint16_t qd : {0, 2}) {
    PacketBuilder b;
    b.header(1, flag::QR, qd, 0, 0, 0);
    if (qd) b.question("a", type::A).question("b", type::A);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadCount) << qd;
  }
  EXPECT_EQ(parseResponse(ByteView(pkt.data(), 5), r), Error::kTruncated);
}

TEST(ParseResponse, HugeCountsTruncated) {
  PacketBuilder b;
  b.header(1, flag::QR, 1, 0xFFFF, 0xFFFF, 0xFFFF)
      .question("a", type::A)
      .pointer(12)
      .rrBody(type::A, cls::IN, 1, {1, 2, 3, 4});
  Response r;
  EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kTruncated);
}

TEST(ParseResponse, RdlengthPastEnd) {
  PacketBuilder b;
  b.header(1, flag::QR, 1, 1, 0, 0)
      .question("a", type::A)
      .pointer(12)
      .u16(type::A)
      .u16(1)
      .u32(5)
      .u16(5)
      .raw({1, 2, 3, 4});
  Response r;
  EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kTruncated);
}

std::vector<uint8_t> soaRdata(uint32_t minimum) {
  PacketBuilder b;
  b.name("ns.example").name("host.example").u32(1).u32(2).u32(3).u32(4).u32(minimum);
  return b.bytes();
}

TEST(ParseResponse, SoaRdlengthConsistency) {
  Response r;
  {
    auto rd = soaRdata(42);
    rd.push_back(0);  // one byte too many
    PacketBuilder b;
    b.header(1, flag::QR, 1, 0, 1, 0)
        .question("x.example", type::A)
        .name("example")
        .rrBody(type::SOA, cls::IN, 60, rd);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadRdata);
  }
  {
    auto rd = soaRdata(42);
    rd.pop_back();  // MINIMUM cut short
    PacketBuilder b;
    b.header(1, flag::QR, 1, 0, 1, 0)
        .question("x.example", type::A)
        .name("example")
        .rrBody(type::SOA, cls::IN, 60, rd);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadRdata);
  }
  {
    PacketBuilder b;  // empty SOA RDATA
    b.header(1, flag::QR, 1, 0, 1, 0)
        .question("x.example", type::A)
        .name("example")
        .rrBody(type::SOA, cls::IN, 60, {});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadRdata);
  }
  {
    PacketBuilder b;  // valid, with compressed MNAME/RNAME; first SOA wins
    b.header(1, flag::QR | rcode::NoError, 1, 0, 2, 0)
        .question("x.example", type::A)
        .pointer(14)
        .u16(type::SOA)
        .u16(cls::IN)
        .u32(120)
        .u16(2 + 2 + 20)
        .pointer(14)
        .pointer(12)
        .u32(1)
        .u32(2)
        .u32(3)
        .u32(4)
        .u32(77)
        .pointer(14)
        .rrBody(type::SOA, cls::IN, 5, soaRdata(1));
    ASSERT_EQ(parseResponse(view(b.bytes()), r), Error::kNone);
    EXPECT_TRUE(r.has_soa);
    EXPECT_EQ(r.soa_ttl, 120u);
    EXPECT_EQ(r.soa_minimum, 77u);
    EXPECT_EQ(r.min_ttl, 5u);
    EXPECT_EQ(classify(r), ResponseType::kNoData);
  }
}

TEST(ParseResponse, NameRdataValidated) {
  Response r;
  {
    auto rd = wireName("target.example");
    rd.push_back(0);
    PacketBuilder b;
    b.header(1, flag::QR, 1, 1, 0, 0)
        .question("a.example", type::CNAME)
        .pointer(12)
        .rrBody(type::CNAME, cls::IN, 60, rd);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadRdata);
  }
  {
    PacketBuilder b;  // name in RDATA with a forward pointer
    b.header(1, flag::QR, 1, 1, 0, 0)
        .question("a.example", type::PTR)
        .pointer(12)
        .rrBody(type::PTR, cls::IN, 60, {0xC0, 0xFF});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadPointer);
  }
  {
    PacketBuilder b;  // MX too short
    b.header(1, flag::QR, 1, 1, 0, 0)
        .question("a.example", type::MX)
        .pointer(12)
        .rrBody(type::MX, cls::IN, 60, {0, 10});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadRdata);
  }
  {
    PacketBuilder b;  // SRV ok
    auto rd = std::vector<uint8_t>{0, 1, 0, 2, 0, 53};
    auto target = wireName("srv.example");
    rd.insert(rd.end(), target.begin(), target.end());
    b.header(1, flag::QR, 1, 1, 0, 0)
        .question("_x._udp.example", type::SRV)
        .pointer(12)
        .rrBody(type::SRV, cls::IN, 60, rd);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kNone);
  }
  {
    PacketBuilder b;  // a name label type inside NS RDATA
    b.header(1, flag::QR, 1, 0, 1, 0)
        .question("a.example", type::A)
        .pointer(12)
        .rrBody(type::NS, cls::IN, 60, {0x41, 0});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadLabelType);
  }
}

TEST(ParseResponse, OptRules) {
  Response r;
  {
    PacketBuilder b;
    b.header(1, flag::QR, 1, 1, 0, 0).question("a", type::A).opt(1232);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadOpt);
  }
  {
    PacketBuilder b;
    b.header(1, flag::QR, 1, 0, 0, 2).question("a", type::A).opt(1232).opt(512);
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadOpt);
  }
  {
    PacketBuilder b;
    b.header(1, flag::QR, 1, 0, 0, 1)
        .question("a", type::A)
        .pointer(12)
        .rrBody(type::OPT, 512, 0, {});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadOpt);
  }
  {
    PacketBuilder b;
    b.header(1, flag::QR, 1, 0, 0, 1).question("a", type::A).opt(512, 0, 0, false, {0, 1, 0, 5});
    EXPECT_EQ(parseResponse(view(b.bytes()), r), Error::kBadOpt);
  }
  {
    PacketBuilder b;  // OPT first in additional, then glue: OPT excluded from rrs
    b.header(1, flag::QR, 1, 0, 0, 2)
        .question("a", type::A)
        .opt(512, 0, 0, true)
        .pointer(12)
        .rrBody(type::A, cls::IN, 9, {1, 2, 3, 4});
    ASSERT_EQ(parseResponse(view(b.bytes()), r), Error::kNone);
    ASSERT_EQ(r.rrs.size(), 1u);
    EXPECT_EQ(r.rrs[0].section, 2);
    EXPECT_TRUE(r.edns.dnssec_ok);
    EXPECT_EQ(r.edns.udp_size, 512);
  }
}

TEST(ParseResponse, TtlWithTopBitCountsAsZero) {
  PacketBuilder b;
  b.header(1, flag::QR, 1, 2, 0, 0)
      .question("a", type::A)
      .pointer(12)
      .rrBody(type::A, cls::IN, 0x80000000u, {1, 2, 3, 4})
      .pointer(12)
      .rrBody(type::A, cls::IN, 30, {1, 2, 3, 5});
  Response r;
  ASSERT_EQ(parseResponse(view(b.bytes()), r), Error::kNone);
  EXPECT_EQ(r.min_ttl, 0u);
}

// ---------------------------------------------------------------------------------------------
// classify

struct RespSpec {
  uint16_t flags = flag::QR;
  uint16_t qtype = type::A;
  bool answer = false, soa = false, ns = false;
  int ext_rcode = -1;  // >= 0: add an OPT with this extended rcode
};

ResponseType classifyBuilt(const RespSpec& s) {
  PacketBuilder b;
  b.header(1, s.flags, 1, s.answer ? 1 : 0, (s.soa ? 1 : 0) + (s.ns ? 1 : 0),
           s.ext_rcode >= 0 ? 1 : 0)
      .question("q.example", s.qtype);
  if (s.answer) b.pointer(12).rrBody(type::A, cls::IN, 60, {1, 2, 3, 4});
  if (s.soa) b.pointer(14).rrBody(type::SOA, cls::IN, 60, soaRdata(30));
  if (s.ns) b.pointer(14).rrBody(type::NS, cls::IN, 60, wireName("ns.example"));
  if (s.ext_rcode >= 0) b.opt(1232, static_cast<uint8_t>(s.ext_rcode));
  Response r;
  const Error e = parseResponse(view(b.bytes()), r);
  EXPECT_EQ(e, Error::kNone) << errorString(e);
  return classify(r);
}

TEST(Classify, EveryType) {
  const uint16_t qr = flag::QR;
  EXPECT_EQ(classifyBuilt({qr, type::A, true}), ResponseType::kNoError);
  EXPECT_EQ(classifyBuilt({qr, type::A, true, true}), ResponseType::kNoError);
  EXPECT_EQ(classifyBuilt({qr, type::A, false, true}), ResponseType::kNoData);
  EXPECT_EQ(classifyBuilt({qr | rcode::NxDomain, type::A, false, true}), ResponseType::kNameError);
  EXPECT_EQ(classifyBuilt({qr | rcode::NxDomain}), ResponseType::kOtherError);
  EXPECT_EQ(classifyBuilt({qr | rcode::ServFail}), ResponseType::kServerError);
  EXPECT_EQ(classifyBuilt({qr | rcode::NotImp}), ResponseType::kServerError);
  EXPECT_EQ(classifyBuilt({qr, type::A, false, false, true}), ResponseType::kDelegation);
  EXPECT_EQ(classifyBuilt({qr, type::A, false, true, true}), ResponseType::kNoData);
  EXPECT_EQ(classifyBuilt({qr}), ResponseType::kNoError);
  EXPECT_EQ(classifyBuilt({qr | rcode::Refused}), ResponseType::kOtherError);
  EXPECT_EQ(classifyBuilt({qr | rcode::FormErr}), ResponseType::kOtherError);
  EXPECT_EQ(classifyBuilt({qr | rcode::Refused, type::A, false, false, true}),
            ResponseType::kOtherError);
  // BADVERS: header rcode 0 with extended rcode 1 is rcode 16, not NOERROR.
  EXPECT_EQ(classifyBuilt({qr, type::A, true, false, false, 1}), ResponseType::kOtherError);
  EXPECT_EQ(classifyBuilt({qr, type::A, true, false, false, 0}), ResponseType::kNoError);
  EXPECT_EQ(classifyBuilt({qr, type::AXFR, true}), ResponseType::kMeta);
  EXPECT_EQ(classifyBuilt({qr, type::IXFR}), ResponseType::kMeta);
  EXPECT_EQ(classifyBuilt({static_cast<uint16_t>(qr | (4 << 11))}), ResponseType::kMeta);
  EXPECT_EQ(classifyBuilt({static_cast<uint16_t>(qr | (5 << 11)), type::A, true}),
            ResponseType::kUpdate);
}

TEST(QuestionMatches, CaseTypeClass) {
  Question a, b;
  a.name = mustName("Example.ORG");
  b.name = mustName("example.org");
  a.qtype = b.qtype = type::A;
  a.qclass = b.qclass = cls::IN;
  EXPECT_TRUE(questionMatches(a, b));
  b.qtype = type::AAAA;
  EXPECT_FALSE(questionMatches(a, b));
  b.qtype = type::A;
  b.qclass = cls::CH;
  EXPECT_FALSE(questionMatches(a, b));
  b.qclass = cls::IN;
  b.name = mustName("example.net");
  EXPECT_FALSE(questionMatches(a, b));
}

// ---------------------------------------------------------------------------------------------
// builders

TEST(BuildErrorResponse, EchoesQuestionAndOpt) {
  PacketBuilder b;
  b.header(0xABCD, flag::RD | flag::CD | flag::AD, 1, 0, 0, 1)
      .question("ExAmPlE.CoM", type::AAAA)
      .opt(4096, 0, 0, true);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kOk);
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(b.bytes()), q, rcode::ServFail, out);
  ASSERT_GT(n, 0u);
  out.resize(n);
  const Header h = Header::read(view(out));
  EXPECT_EQ(h.id, 0xABCD);
  EXPECT_TRUE(h.qr());
  EXPECT_FALSE(h.ra());  // as CoreDNS's own error replies (SetRcode)
  EXPECT_TRUE(h.rd());
  EXPECT_TRUE(h.cd());
  EXPECT_FALSE(h.ad());
  EXPECT_FALSE(h.aa());
  EXPECT_EQ(h.rcode(), rcode::ServFail);
  EXPECT_EQ(h.qdcount, 1);
  EXPECT_EQ(h.arcount, 1);
  EXPECT_TRUE(std::equal(b.bytes().begin() + 12,
                         b.bytes().begin() + static_cast<long>(q.question.end), out.begin() + 12));
  Response r;
  ASSERT_EQ(parseResponse(view(out), r), Error::kNone);
  EXPECT_EQ(r.question.name.toString(), "ExAmPlE.CoM.");
  EXPECT_TRUE(r.edns.present);
  EXPECT_EQ(r.edns.udp_size, kOurUdpSize);
  EXPECT_TRUE(r.edns.dnssec_ok);
  EXPECT_EQ(r.edns.version, 0);
  EXPECT_EQ(r.edns.ext_rcode, 0);
  EXPECT_EQ(classify(r), ResponseType::kServerError);
  // Too small output buffers yield 0, never a partial write.
  for (size_t size = 0; size < n; ++size) {
    std::vector<uint8_t> small(size);
    EXPECT_EQ(buildErrorResponse(view(b.bytes()), q, rcode::ServFail, small), 0u) << size;
  }
}

TEST(BuildErrorResponse, NoOptWithoutClientOpt) {
  auto pkt = vec(testdata::kDnspythonQueryPlain);
  Query q;
  ASSERT_EQ(parseQ(pkt, q), QueryStatus::kOk);
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(pkt), q, rcode::Refused, out);
  ASSERT_EQ(n, pkt.size());
  out.resize(n);
  const Header h = Header::read(view(out));
  EXPECT_EQ(h.arcount, 0);
  EXPECT_EQ(h.rcode(), rcode::Refused);
  EXPECT_TRUE(std::equal(pkt.begin() + 12, pkt.end(), out.begin() + 12));
}

TEST(BuildErrorResponse, BadVersEncoding) {
  PacketBuilder b;
  b.header(9, flag::RD, 1, 0, 0, 1).question("example.org", type::A).opt(1232, 0, 1, false);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kBadVers);
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(b.bytes()), q, rcode::BadVers, out);
  ASSERT_GT(n, 0u);
  out.resize(n);
  EXPECT_EQ(Header::read(view(out)).rcode(), 0);
  Response r;
  ASSERT_EQ(parseResponse(view(out), r), Error::kNone);
  ASSERT_TRUE(r.edns.present);
  EXPECT_EQ(r.edns.ext_rcode, 1);
  EXPECT_EQ(r.edns.version, 0);
  EXPECT_EQ(classify(r), ResponseType::kOtherError);
}

TEST(BuildErrorResponse, NotImpKeepsOpcode) {
  PacketBuilder b;
  b.header(10, static_cast<uint16_t>(4 << 11), 1, 0, 0, 0).question("Zone.example", type::SOA);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kNotImp);
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(b.bytes()), q, rcode::NotImp, out);
  ASSERT_EQ(n, b.size());
  const Header h = Header::read(ByteView(out.data(), n));
  EXPECT_EQ(h.opcode(), 4);
  EXPECT_EQ(h.rcode(), rcode::NotImp);
  EXPECT_EQ(h.qdcount, 1);
  EXPECT_TRUE(std::equal(b.bytes().begin() + 12, b.bytes().end(), out.begin() + 12));
}

TEST(BuildErrorResponse, HeaderOnlyWhenQuestionMissing) {
  PacketBuilder b;
  b.header(11, flag::RD, 0, 0, 0, 0);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kFormErr);
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(b.bytes()), q, rcode::FormErr, out);
  ASSERT_EQ(n, kHeaderSize);
  const Header h = Header::read(ByteView(out.data(), n));
  EXPECT_EQ(h.qdcount, 0);
  EXPECT_EQ(h.rcode(), rcode::FormErr);
  EXPECT_EQ(h.id, 11);
}

TEST(BuildErrorResponse, CompressedQnameWrittenDecoded) {
  // ID 0x0000 makes offset 0 a root label, so "www" + pointer(0) decodes to "www.".
  PacketBuilder b;
  b.header(0, flag::RD, 1, 0, 0, 0).labels("WWW").pointer(0).u16(type::A).u16(cls::IN);
  Query q;
  ASSERT_EQ(parseQ(b.bytes(), q), QueryStatus::kOk);
  EXPECT_EQ(q.question.name.toString(), "WWW.");
  std::vector<uint8_t> out(512);
  const size_t n = buildErrorResponse(view(b.bytes()), q, rcode::ServFail, out);
  ASSERT_EQ(n, kHeaderSize + 5 + 4);
  Response r;
  ASSERT_EQ(parseResponse(ByteView(out.data(), n), r), Error::kNone);
  EXPECT_EQ(r.question.name.toString(), "WWW.");
  EXPECT_EQ(r.question.qtype, type::A);
}

TEST(BuildQuery, MatchesDnspythonBytes) {
  std::vector<uint8_t> out(512);
  size_t n = buildQuery(0x4242, mustName("example.org"), type::AAAA, cls::IN,
                        flag::RD | flag::CD | flag::QR, true, 1232, true, out);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + static_cast<long>(n)),
            vec(testdata::kDnspythonBuildQueryEdns));
  n = buildQuery(0x0102, mustName("Example.org."), type::MX, cls::IN, flag::RD, false, 0, false,
                 out);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + static_cast<long>(n)),
            vec(testdata::kDnspythonBuildQueryPlain));
  Query q;
  EXPECT_EQ(parseQuery(ByteView(out.data(), n), q), QueryStatus::kOk);
  EXPECT_EQ(q.question.name.toString(), "Example.org.");
  // Size limits.
  const size_t need = sizeof(testdata::kDnspythonBuildQueryEdns);
  for (size_t size = 0; size < need; ++size) {
    std::vector<uint8_t> small(size);
    EXPECT_EQ(buildQuery(1, mustName("example.org"), type::AAAA, cls::IN, flag::RD, true, 1232,
                         true, small),
              0u)
        << size;
  }
  EXPECT_EQ(buildQuery(1, Name{}, type::A, cls::IN, 0, false, 0, false, out), 0u);
}

TEST(AppendOpt, AddsParsableOpt) {
  auto pkt = vec(testdata::kDnspythonQueryPlain);
  std::vector<uint8_t> buf(pkt);
  buf.resize(pkt.size() + 11);
  const size_t n = appendOpt(buf, pkt.size(), 1400, true, 3);
  ASSERT_EQ(n, pkt.size() + 11);
  Query q;
  ASSERT_EQ(parseQuery(ByteView(buf.data(), n), q), QueryStatus::kOk);
  EXPECT_TRUE(q.edns.present);
  EXPECT_EQ(q.edns.udp_size, 1400);
  EXPECT_TRUE(q.edns.dnssec_ok);
  EXPECT_EQ(q.edns.ext_rcode, 3);
  EXPECT_EQ(q.header.arcount, 1);
  // No room / bad length.
  EXPECT_EQ(appendOpt(buf, pkt.size() + 1, 1400, true), 0u);
  EXPECT_EQ(appendOpt(buf, 5, 1400, true), 0u);
  EXPECT_EQ(appendOpt(buf, buf.size() + 1, 1400, true), 0u);
}

TEST(StripOpt, RemovesTrailingOpt) {
  auto pkt = vec(testdata::kDnspythonResponseCname);
  Response r;
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  const size_t n = stripOpt(pkt, pkt.size(), r);
  EXPECT_EQ(n, pkt.size() - 11);
  Response r2;
  ASSERT_EQ(parseResponse(ByteView(pkt.data(), n), r2), Error::kNone);
  EXPECT_FALSE(r2.edns.present);
  EXPECT_EQ(r2.header.arcount, 1);
  EXPECT_EQ(r2.rrs.size(), 5u);
  EXPECT_EQ(r2.end, n);
  // Without OPT nothing changes.
  EXPECT_EQ(stripOpt(pkt, n, r2), n);
}

TEST(StripOpt, RemovesOptAndRecordsAfterIt) {
  PacketBuilder b;
  b.header(1, flag::QR, 1, 1, 0, 3)
      .question("a.example", type::A)
      .pointer(12)
      .rrBody(type::A, cls::IN, 9, {1, 2, 3, 4})
      .pointer(12)
      .rrBody(type::A, cls::IN, 9, {1, 2, 3, 5});
  const size_t opt_at = b.size();
  b.opt(4096).pointer(12).rrBody(type::A, cls::IN, 9, {1, 2, 3, 6});
  auto pkt = b.bytes();
  Response r;
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  const size_t n = stripOpt(pkt, pkt.size(), r);
  EXPECT_EQ(n, opt_at);
  Response r2;
  ASSERT_EQ(parseResponse(ByteView(pkt.data(), n), r2), Error::kNone);
  EXPECT_EQ(r2.header.arcount, 1);
  EXPECT_EQ(r2.rrs.size(), 2u);
  EXPECT_FALSE(r2.edns.present);
  // A Response that cannot describe the buffer is refused.
  EXPECT_EQ(stripOpt(pkt, opt_at, r), 0u);
}

TEST(TruncateToQuestion, KeepsHeaderAndQuestion) {
  auto pkt = vec(testdata::kDnspythonResponseCname);
  Response r;
  ASSERT_EQ(parseResponse(view(pkt), r), Error::kNone);
  const size_t n = truncateToQuestion(pkt, r.question.end);
  ASSERT_EQ(n, r.question.end);
  Response r2;
  ASSERT_EQ(parseResponse(ByteView(pkt.data(), n), r2), Error::kNone);
  EXPECT_TRUE(r2.header.tc());
  EXPECT_TRUE(r2.header.rd());
  EXPECT_EQ(r2.header.ancount + r2.header.nscount + r2.header.arcount, 0);
  EXPECT_TRUE(r2.rrs.empty());
  EXPECT_EQ(truncateToQuestion(pkt, 3), 0u);
  EXPECT_EQ(truncateToQuestion(pkt, pkt.size() + 1), 0u);
}

TEST(SetId, WritesBigEndian) {
  uint8_t m[12] = {};
  setId(m, 0xA1B2);
  EXPECT_EQ(m[0], 0xA1);
  EXPECT_EQ(m[1], 0xB2);
}

}  // namespace
}  // namespace nld::dns
