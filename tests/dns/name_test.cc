#include "dns/name.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "support/packet_builder.h"

namespace nld::dns {
namespace {

using test::PacketBuilder;

Name mustParse(std::string_view text) {
  auto n = Name::fromString(text);
  EXPECT_TRUE(n.has_value()) << text;
  return n.value_or(Name{});
}

Error read(const std::vector<uint8_t>& msg, size_t offset, Name& out, size_t& next) {
  return readName(ByteView(msg.data(), msg.size()), offset, out, next);
}

Error skip(const std::vector<uint8_t>& msg, size_t offset, size_t& next) {
  return skipName(ByteView(msg.data(), msg.size()), offset, next);
}

TEST(ReadName, PlainNamePreservesCase) {
  PacketBuilder b;
  b.name("WwW.Example.ORG");
  Name n;
  size_t next = 0;
  ASSERT_EQ(read(b.bytes(), 0, n, next), Error::kNone);
  EXPECT_EQ(next, b.size());
  EXPECT_EQ(n.toString(), "WwW.Example.ORG.");
  EXPECT_EQ(n.len, b.size());
  size_t next2 = 0;
  EXPECT_EQ(skip(b.bytes(), 0, next2), Error::kNone);
  EXPECT_EQ(next2, next);
}

TEST(ReadName, Root) {
  std::vector<uint8_t> msg{0};
  Name n;
  size_t next = 0;
  ASSERT_EQ(read(msg, 0, n, next), Error::kNone);
  EXPECT_EQ(n.len, 1);
  EXPECT_EQ(next, 1u);
  EXPECT_EQ(n.toString(), ".");
  EXPECT_EQ(n.labelCount(), 0u);
}

TEST(ReadName, BackwardPointerFollowedAndNextAfterPointer) {
  PacketBuilder b;
  b.name("example.org");           // offset 0
  const size_t second = b.size();  // "www" + pointer to 0
  b.labels("www").pointer(0).u8(0xAA);
  Name n;
  size_t next = 0;
  ASSERT_EQ(read(b.bytes(), second, n, next), Error::kNone);
  EXPECT_EQ(n.toString(), "www.example.org.");
  EXPECT_EQ(next, second + 4 + 2);
  size_t next2 = 0;
  EXPECT_EQ(skip(b.bytes(), second, next2), Error::kNone);
  EXPECT_EQ(next2, next);
}

TEST(ReadName, ForwardAndSelfPointersRejected) {
  {
    PacketBuilder b;
    b.pointer(2).name("a");  // points forward to "a"
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(b.bytes(), 0, n, next), Error::kBadPointer);
    EXPECT_EQ(skip(b.bytes(), 0, next), Error::kBadPointer);
  }
  {
    PacketBuilder b;
    b.pointer(0);  // points at itself
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(b.bytes(), 0, n, next), Error::kBadPointer);
    EXPECT_EQ(skip(b.bytes(), 0, next), Error::kBadPointer);
  }
  {
    // A pointer back to the start of its own run of labels would loop: rejected.
    PacketBuilder b;
    b.labels("a").pointer(0);
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(b.bytes(), 0, n, next), Error::kBadPointer);
    EXPECT_EQ(skip(b.bytes(), 0, next), Error::kBadPointer);
  }
  {
    // Two names pointing into each other: the second jump is not before its run's start.
    PacketBuilder b;
    b.labels("a").pointer(4).labels("b").pointer(0);  // 0: a,->4   4: b,->0
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(b.bytes(), 4, n, next), Error::kBadPointer);
    EXPECT_EQ(skip(b.bytes(), 4, next), Error::kBadPointer);
  }
}

TEST(ReadName, PointerTargetMustEndBeforeThePointer) {
  // 0: label of 5 bytes "ab\xC0\x00c", 6: root. The pointer bytes at 3 are inside that label.
  std::vector<uint8_t> msg{5, 'a', 'b', 0xC0, 0x00, 'c', 0};
  Name n;
  size_t next = 0;
  EXPECT_EQ(read(msg, 0, n, next), Error::kNone);  // as a plain name it is fine
  EXPECT_EQ(read(msg, 3, n, next), Error::kBadPointer);
  EXPECT_EQ(skip(msg, 3, next), Error::kBadPointer);
  // Target run ending exactly at the pointer is fine.
  std::vector<uint8_t> ok{1, 'a', 0, 0xC0, 0x00};
  EXPECT_EQ(read(ok, 3, n, next), Error::kNone);
  EXPECT_EQ(n.toString(), "a.");
  EXPECT_EQ(next, 5u);
}

// A chain of pointers, each pointing at the previous one, ending at the root label at offset 0.
std::vector<uint8_t> pointerChain(int jumps) {
  PacketBuilder b;
  b.u8(0);
  b.pointer(0);
  for (int i = 1; i < jumps; ++i) b.pointer(static_cast<uint16_t>(1 + 2 * (i - 1)));
  return b.bytes();
}

TEST(ReadName, JumpLimit) {
  Name n;
  size_t next = 0;
  auto ok = pointerChain(127);
  EXPECT_EQ(read(ok, ok.size() - 2, n, next), Error::kNone);
  EXPECT_EQ(n.len, 1);
  EXPECT_EQ(next, ok.size());
  EXPECT_EQ(skip(ok, ok.size() - 2, next), Error::kNone);
  auto bad = pointerChain(128);
  EXPECT_EQ(read(bad, bad.size() - 2, n, next), Error::kPointerLoop);
  EXPECT_EQ(skip(bad, bad.size() - 2, next), Error::kPointerLoop);
}

TEST(ReadName, BadLabelTypes) {
  for (uint8_t t : {uint8_t{0x40}, uint8_t{0x41}, uint8_t{0x80}, uint8_t{0xBF}}) {
    std::vector<uint8_t> msg{t, 'a', 0};
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(msg, 0, n, next), Error::kBadLabelType) << int{t};
    EXPECT_EQ(skip(msg, 0, next), Error::kBadLabelType) << int{t};
  }
}

TEST(ReadName, Label63VersusLengthByte64) {
  std::string l63(63, 'x');
  PacketBuilder ok;
  ok.name(l63);
  Name n;
  size_t next = 0;
  EXPECT_EQ(read(ok.bytes(), 0, n, next), Error::kNone);
  EXPECT_EQ(n.len, 65);
  // A length byte of 64 is label type 0x40 on the wire.
  std::vector<uint8_t> bad{64};
  bad.insert(bad.end(), 64, 'x');
  bad.push_back(0);
  EXPECT_EQ(read(bad, 0, n, next), Error::kBadLabelType);
}

std::string nameOfWireLength(size_t wire_len) {
  // 3 x 63-byte labels (192 bytes) + one label of (wire_len - 192 - 2) bytes + root.
  std::string s = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(63, 'c') +
                  "." + std::string(wire_len - 192 - 2, 'd');
  return s;
}

TEST(ReadName, Exactly255VersusAbove) {
  Name n;
  size_t next = 0;
  PacketBuilder ok;
  ok.name(nameOfWireLength(255));
  ASSERT_EQ(ok.size(), 255u);
  EXPECT_EQ(read(ok.bytes(), 0, n, next), Error::kNone);
  EXPECT_EQ(n.len, 255);
  EXPECT_EQ(skip(ok.bytes(), 0, next), Error::kNone);

  PacketBuilder bad;
  bad.name(nameOfWireLength(256));
  ASSERT_EQ(bad.size(), 256u);
  EXPECT_EQ(read(bad.bytes(), 0, n, next), Error::kNameTooLong);
  EXPECT_EQ(skip(bad.bytes(), 0, next), Error::kNameTooLong);

  // Too long only after following a pointer.
  PacketBuilder via_ptr;
  via_ptr.name(nameOfWireLength(255));
  const size_t at = via_ptr.size();
  via_ptr.labels("x").pointer(0);
  EXPECT_EQ(read(via_ptr.bytes(), at, n, next), Error::kNameTooLong);
  EXPECT_EQ(skip(via_ptr.bytes(), at, next), Error::kNameTooLong);
}

TEST(ReadName, TruncatedEverywhere) {
  PacketBuilder b;
  b.name("example.org");
  const size_t at = b.size();
  b.labels("www").pointer(0);
  const auto& full = b.bytes();
  for (size_t cut = at; cut < full.size(); ++cut) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + static_cast<long>(cut));
    Name n;
    size_t next = 0;
    EXPECT_EQ(read(prefix, at, n, next), Error::kTruncated) << cut;
    EXPECT_EQ(skip(prefix, at, next), Error::kTruncated) << cut;
  }
  Name n;
  size_t next = 0;
  EXPECT_EQ(readName(ByteView(), 0, n, next), Error::kTruncated);
  EXPECT_EQ(read(full, full.size() + 5, n, next), Error::kTruncated);
}

TEST(NameString, EscapesLikeMiekg) {
  PacketBuilder b;
  b.u8(5)
      .raw({'a', '.', 'b', '\\', ' '})
      .u8(3)
      .raw({0x00, 0x7f, 0xff})
      .u8(4)
      .raw({'@', ';', '"', '('})
      .u8(0);
  Name n;
  size_t next = 0;
  ASSERT_EQ(read(b.bytes(), 0, n, next), Error::kNone);
  EXPECT_EQ(n.toString(), "a\\.b\\\\\\ .\\000\\127\\255.\\@\\;\\\"\\(.");
  auto back = Name::fromString(n.toString());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->len, n.len);
  EXPECT_TRUE(std::equal(n.data.begin(), n.data.begin() + n.len, back->data.begin()));
}

TEST(NameString, FromStringForms) {
  EXPECT_EQ(mustParse("example.org").toString(), "example.org.");
  EXPECT_EQ(mustParse("example.org.").toString(), "example.org.");
  EXPECT_EQ(mustParse(".").len, 1);
  EXPECT_EQ(mustParse("\\065bc").toString(), "Abc.");
  EXPECT_EQ(mustParse("a\\.b.c").labelCount(), 2u);
  EXPECT_EQ(mustParse("x.y.z").labelCount(), 3u);
  EXPECT_EQ(mustParse("Example.ORG").toString(), "Example.ORG.");  // case preserved
  for (std::string_view bad : {"", "..", "a..b", ".a", "a\\", "a\\25", "a\\2x5", "\\256"}) {
    EXPECT_FALSE(Name::fromString(bad).has_value()) << bad;
  }
  EXPECT_TRUE(Name::fromString(std::string(63, 'a')).has_value());
  EXPECT_FALSE(Name::fromString(std::string(64, 'a')).has_value());
  EXPECT_TRUE(Name::fromString(nameOfWireLength(255)).has_value());
  EXPECT_EQ(mustParse(nameOfWireLength(255) + ".").len, 255);
  EXPECT_FALSE(Name::fromString(nameOfWireLength(256)).has_value());
}

TEST(NameCompare, CaseInsensitive) {
  Name a = mustParse("WWW.Example.org");
  Name b = mustParse("www.example.ORG.");
  EXPECT_TRUE(a.equalsIgnoreCase(b));
  EXPECT_FALSE(a.equalsIgnoreCase(mustParse("www.example.net")));
  EXPECT_FALSE(a.equalsIgnoreCase(mustParse("ww.example.org")));
  a.toLower();
  EXPECT_EQ(a.toString(), "www.example.org.");
}

TEST(NameCompare, AsciiLower8MatchesTheScalarVersionForEveryByte) {
  for (unsigned b = 0; b < 256; ++b) {
    for (unsigned pos = 0; pos < 8; ++pos) {
      // The byte under test at `pos`, neighbours that could carry into it on either side.
      uint8_t bytes[8] = {0xff, 0x40, 0x5b, 0x7f, 0x80, 0x41, 0x5a, 0x00};
      bytes[pos] = static_cast<uint8_t>(b);
      uint64_t w = 0;
      std::memcpy(&w, bytes, 8);
      const uint64_t lw = asciiLower8(w);
      uint8_t out[8];
      std::memcpy(out, &lw, 8);
      for (unsigned i = 0; i < 8; ++i) ASSERT_EQ(out[i], asciiLower(bytes[i])) << b << " " << pos;
    }
  }
}

TEST(NameCompare, EqualityAndHashIgnoreCaseOnlyForLetters) {
  // Names of 14..73 bytes: every alignment of the 8-byte steps and of the zero-padded tail.
  for (size_t n = 1; n <= 60; ++n) {
    std::string upper, lower;
    for (size_t i = 0; i < n; ++i) {
      upper += static_cast<char>('A' + i % 26);
      lower += static_cast<char>('a' + i % 26);
    }
    Name a = mustParse(upper + ".Example.ORG"), b = mustParse(lower + ".example.org");
    EXPECT_TRUE(a.equalsIgnoreCase(b)) << n;
    EXPECT_EQ(a.hashLower(7), b.hashLower(7)) << n;
    Name c = b;
    c.data[c.len - 2] = static_cast<uint8_t>('h');  // last letter differs: "or" + 'h'
    EXPECT_FALSE(b.equalsIgnoreCase(c)) << n;
    EXPECT_NE(b.hashLower(7), c.hashLower(7)) << n;
    // '@' (0x40) and '`' (0x60), '[' (0x5b) and '{' (0x7b) differ only in bit 5 but are not
    // letters.
    Name d = mustParse(lower + "@.x"), e = mustParse(lower + "`.x");
    EXPECT_FALSE(d.equalsIgnoreCase(e)) << n;
    Name f = mustParse(lower + "[.x"), g = mustParse(lower + "{.x");
    EXPECT_FALSE(f.equalsIgnoreCase(g)) << n;
  }
  EXPECT_NE(mustParse("a.b").hashLower(1), mustParse("a.b").hashLower(2));  // seeded
  // Bytes past len (left over from a longer name) do not count.
  Name x = mustParse("www.example.org"), y = mustParse("www.example.org");
  for (size_t i = y.len; i < y.data.size(); ++i) y.data[i] = 0x41;
  EXPECT_TRUE(x.equalsIgnoreCase(y));
  EXPECT_EQ(x.hashLower(3), y.hashLower(3));
  // The longest names take the tail path near the end of the array.
  std::string longest;
  for (int i = 0; i < 4; ++i) longest += std::string(i < 3 ? 63 : 61, 'A' + char(i)) + ".";
  Name l1 = mustParse(longest), l2 = l1;
  ASSERT_EQ(l1.len, 255);
  l2.toLower();
  EXPECT_TRUE(l1.equalsIgnoreCase(l2));
  EXPECT_EQ(l1.hashLower(5), l2.hashLower(5));
  l2.data[253] = 'z';
  EXPECT_FALSE(l1.equalsIgnoreCase(l2));
}

TEST(NameCompare, WireEqualsIgnoreCaseAtEveryLengthAndPosition) {
  for (size_t len = 0; len <= 40; ++len) {
    std::vector<uint8_t> a(len), b(len);
    for (size_t i = 0; i < len; ++i) {
      a[i] = static_cast<uint8_t>('a' + i % 26);
      b[i] = static_cast<uint8_t>('A' + i % 26);
    }
    EXPECT_TRUE(wireEqualsIgnoreCase(a.data(), b.data(), len)) << len;
    for (size_t pos = 0; pos < len; ++pos) {
      std::vector<uint8_t> c = b;
      c[pos] = '@';  // a non-letter in its place
      EXPECT_FALSE(wireEqualsIgnoreCase(a.data(), c.data(), len)) << len << " " << pos;
      c = a;
      c[pos] = static_cast<uint8_t>(a[pos] == 'z' ? 'y' : a[pos] + 1);  // another letter
      EXPECT_FALSE(wireEqualsIgnoreCase(a.data(), c.data(), len)) << len << " " << pos;
    }
  }
}

TEST(NameCompare, IsSubdomainOf) {
  const Name zone = mustParse("Example.org");
  EXPECT_TRUE(mustParse("www.EXAMPLE.org").isSubdomainOf(zone));
  EXPECT_TRUE(mustParse("a.b.example.org").isSubdomainOf(zone));
  EXPECT_TRUE(mustParse("example.ORG").isSubdomainOf(zone));
  EXPECT_FALSE(mustParse("wwwexample.org").isSubdomainOf(zone));  // not label-aligned
  EXPECT_FALSE(mustParse("org").isSubdomainOf(zone));
  EXPECT_FALSE(mustParse("example.net").isSubdomainOf(zone));
  EXPECT_TRUE(mustParse("anything.at.all").isSubdomainOf(mustParse(".")));
  EXPECT_TRUE(mustParse(".").isSubdomainOf(mustParse(".")));
  EXPECT_FALSE(mustParse(".").isSubdomainOf(zone));
  // A label containing an escaped dot is one label: "a\.example.org" is not below "example.org"
  // on a boundary that does not exist.
  EXPECT_FALSE(mustParse("a\\.example.org").isSubdomainOf(mustParse("example.org")));
  EXPECT_TRUE(mustParse("x.a\\.example.org").isSubdomainOf(mustParse("a\\.example.org")));
  EXPECT_FALSE(zone.isSubdomainOf(Name{}));
}

TEST(Errors, AllHaveStrings) {
  for (int e = 0; e <= static_cast<int>(Error::kBadRdata); ++e) {
    EXPECT_FALSE(errorString(static_cast<Error>(e)).empty());
    EXPECT_NE(errorString(static_cast<Error>(e)), "unknown error");
  }
}

}  // namespace
}  // namespace nld::dns
