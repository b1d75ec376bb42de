#include "dns/shuffle.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/random.h"
#include "dns/message.h"
#include "support/packet_builder.h"

namespace nld::dns {
namespace {

using test::PacketBuilder;
using test::wireName;

// Always the last candidate: Fisher-Yates then keeps the order; always 0: a fixed rotation.
uint64_t keep(uint64_t bound) { return bound - 1; }
uint64_t first(uint64_t) { return 0; }

// web.example. A: a CNAME to lb.example. then four A records owned by a pointer to the CNAME's
// RDATA, an NS in the authority and two A records of another owner in the additional section.
std::vector<uint8_t> answer(uint16_t rcode = 0) {
  PacketBuilder b;
  b.header(0x1234, 0x8180 | rcode, 1, 5, 1, 2).question("web.example", type::A);
  b.pointer(12).rrBody(type::CNAME, 1, 300, wireName("lb.example"));  // RDATA at 12+17+12=41
  for (uint8_t i = 1; i <= 4; ++i) b.pointer(41).rrBody(type::A, 1, 60 + i, {10, 0, 0, i});
  b.pointer(44).rrBody(type::NS, 1, 300, wireName("ns.example"));
  b.name("ns.example").rrBody(type::A, 1, 100, {192, 0, 2, 1});
  b.name("ns.example").rrBody(type::A, 1, 100, {192, 0, 2, 2});
  return b.bytes();
}

// The A records of the answer section, in message order, as (last octet, TTL).
std::vector<std::pair<uint8_t, uint32_t>> answerAddresses(const std::vector<uint8_t>& pkt) {
  Response r;
  EXPECT_EQ(parseResponse(ByteView(pkt), r), Error::kNone);
  std::vector<std::pair<uint8_t, uint32_t>> out;
  for (const auto& rr : r.rrs) {
    if (rr.section == 0 && rr.type == type::A) {
      out.emplace_back(pkt[(rr.ttl_offset + 6) + 3], load32(pkt.data() + rr.ttl_offset));
    }
  }
  return out;
}

TEST(Shuffle, AddressRecordsTradeSlotsWithTheirTtlsAndTheMessageStillParses) {
  auto pkt = answer();
  const auto before = pkt;
  EXPECT_EQ(shuffleAddressRecords(MutableBytes(pkt), pkt.size(), keep), 6u);  // 4 + 2 additional
  EXPECT_EQ(pkt, before) << "the identity permutation changes nothing";

  EXPECT_EQ(shuffleAddressRecords(MutableBytes(pkt), pkt.size(), first), 6u);
  ASSERT_EQ(pkt.size(), before.size());
  const auto got = answerAddresses(pkt);
  ASSERT_EQ(got.size(), 4u);
  std::set<uint8_t> seen;
  for (const auto& [octet, ttl] : got) {
    EXPECT_EQ(ttl, 60u + octet) << "a TTL travels with its address";
    seen.insert(octet);
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_NE(got.front().first, 1) << "j = 0 at every step moves the first address";
  // The CNAME and the NS (and every pointer into them) are where they were.
  EXPECT_TRUE(std::equal(before.begin(), before.begin() + 53, pkt.begin()));
}

TEST(Shuffle, EveryOrderAppearsWithTheRealRandomSource) {
  std::map<std::vector<uint8_t>, int> orders;
  for (int i = 0; i < 2000; ++i) {
    auto pkt = answer();
    shuffleAddressRecords(MutableBytes(pkt), pkt.size(), randomBelow);
    std::vector<uint8_t> order;
    for (const auto& a : answerAddresses(pkt)) order.push_back(a.first);
    ++orders[order];
  }
  EXPECT_EQ(orders.size(), 24u) << "all 4! orders of the answer's addresses";
}

TEST(Shuffle, AdditionalSectionShufflesItsOwnGroup) {
  auto pkt = answer();
  const size_t n = shuffleAddressRecords(MutableBytes(pkt), pkt.size(), first);
  EXPECT_EQ(n, 6u);  // four answers, two additional records of ns.example
  Response r;
  ASSERT_EQ(parseResponse(ByteView(pkt), r), Error::kNone);
  std::vector<uint8_t> extra;
  for (const auto& rr : r.rrs) {
    if (rr.section == 2) extra.push_back(pkt[(rr.ttl_offset + 6) + 3]);
  }
  EXPECT_EQ(extra, (std::vector<uint8_t>{2, 1}));
}

TEST(Shuffle, ErrorsOtherOwnersAndBrokenMessagesAreLeftAlone) {
  auto nx = answer(rcode::NxDomain);
  const auto nx_before = nx;
  EXPECT_EQ(shuffleAddressRecords(MutableBytes(nx), nx.size(), first), 0u);
  EXPECT_EQ(nx, nx_before);

  // Two A records of different owners: no group of two.
  PacketBuilder b;
  b.header(1, 0x8180, 1, 2, 0, 0).question("a.example", type::A);
  b.name("x.example").rrBody(type::A, 1, 5, {1, 1, 1, 1});
  b.name("y.example").rrBody(type::A, 1, 5, {2, 2, 2, 2});
  auto two = b.bytes();
  const auto two_before = two;
  EXPECT_EQ(shuffleAddressRecords(MutableBytes(two), two.size(), first), 0u);
  EXPECT_EQ(two, two_before);

  // Every truncation of a valid answer: no crash, no read or write past the length.
  const auto full = answer();
  for (size_t len = 0; len < full.size(); ++len) {
    auto cut = std::vector<uint8_t>(full.begin(), full.begin() + long(len));
    shuffleAddressRecords(MutableBytes(cut), cut.size(), first);
  }
}

TEST(Shuffle, AaaaRecordsShuffleToo) {
  PacketBuilder b;
  b.header(1, 0x8180, 1, 3, 0, 0).question("v6.example", type::AAAA);
  for (uint8_t i = 1; i <= 3; ++i) {
    std::vector<uint8_t> rd(16, 0);
    rd[15] = i;
    b.pointer(12).rrBody(type::AAAA, 1, 30, rd);
  }
  auto pkt = b.bytes();
  EXPECT_EQ(shuffleAddressRecords(MutableBytes(pkt), pkt.size(), first), 3u);
  Response r;
  ASSERT_EQ(parseResponse(ByteView(pkt), r), Error::kNone);
  EXPECT_NE(pkt[(r.rrs[0].ttl_offset + 6) + 15], 1);
}

}  // namespace
}  // namespace nld::dns
