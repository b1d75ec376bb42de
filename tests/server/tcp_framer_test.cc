// TcpFramer: DNS-over-TCP frames reassembled from arbitrary read() boundaries, with memory held
// only for what is not consumed yet, sized for the frame being received.
#include "server/tcp_framer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace nld::server {
namespace {

std::vector<uint8_t> frame(size_t len, uint8_t fill) {
  std::vector<uint8_t> f(2 + len, fill);
  f[0] = uint8_t(len >> 8);
  f[1] = uint8_t(len & 0xff);
  return f;
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

TEST(TcpFramer, WholeFramesAreTakenFromTheInputWithoutCopy) {
  TcpFramer f;
  const auto wire = concat({frame(40, 1), frame(30, 2)});
  f.feed(dns::ByteView(wire));
  dns::ByteView m;
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 40u);
  EXPECT_EQ(m.data(), wire.data() + 2) << "a complete frame should not be copied";
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 30u);
  EXPECT_EQ(m[0], 2);
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.capacity(), 0u) << "nothing left over: no buffer held";
}

TEST(TcpFramer, ByteByByteIsReassembledInABufferSizedForTheFrame) {
  TcpFramer f;
  const auto wire = frame(300, 7);
  dns::ByteView m;
  for (size_t i = 0; i < wire.size(); ++i) {
    f.feed(dns::ByteView(wire.data() + i, 1));
    const bool got = f.next(m);
    if (i + 1 < wire.size()) {
      EXPECT_FALSE(got) << "at byte " << i;
      f.keep();
      EXPECT_EQ(f.buffered(), i + 1);
      // Once the length is known, exactly the frame is reserved (no growth on the way).
      if (i >= 1) {
        EXPECT_EQ(f.capacity(), 302u) << "at byte " << i;
      }
    } else {
      ASSERT_TRUE(got);
      EXPECT_EQ(m.size(), 300u);
      EXPECT_EQ(m[0], 7);
      EXPECT_EQ(m[299], 7);
      f.keep();
    }
  }
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.capacity(), 0u) << "the frame's buffer is freed once it is consumed";
}

TEST(TcpFramer, PartialTailIsKeptAndCompletedByTheNextRead) {
  TcpFramer f;
  const auto a = frame(20, 1), b = frame(500, 2), c = frame(10, 3);
  const auto wire = concat({a, b, c});
  dns::ByteView m;
  // First read: all of a and 100 bytes of b.
  f.feed(dns::ByteView(wire.data(), a.size() + 100));
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 20u);
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.buffered(), 100u);
  EXPECT_EQ(f.capacity(), b.size()) << "reserved for the partial frame b, not more";
  // Second read: the rest of b and all of c.
  f.feed(dns::ByteView(wire.data() + a.size() + 100, wire.size() - a.size() - 100));
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 500u);
  EXPECT_EQ(m[499], 2);
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 10u);
  EXPECT_EQ(m[0], 3);
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.capacity(), 0u);
}

TEST(TcpFramer, FramesNotTakenYetAreKeptInOrder) {
  // The connection stops taking frames (too many queries in flight) in the middle of a read.
  TcpFramer f;
  const auto wire = concat({frame(5, 1), frame(6, 2), frame(7, 3), frame(8, 4)});
  dns::ByteView m;
  f.feed(dns::ByteView(wire.data(), wire.size() - 3));  // last frame partial
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 5u);
  f.keep();  // frames 2, 3 and the start of 4 are copied
  EXPECT_EQ(f.buffered(), wire.size() - 3 - 7);
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 6u);
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 7u);
  EXPECT_FALSE(f.next(m)) << "frame 4 is not complete";
  f.feed(dns::ByteView(wire.data() + wire.size() - 3, 3));
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 8u);
  EXPECT_EQ(m[7], 4);
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.capacity(), 0u);
}

TEST(TcpFramer, EmptyAndLargestFrames) {
  TcpFramer f;
  const auto wire = concat({frame(0, 0), frame(65535, 9)});
  dns::ByteView m;
  f.feed(dns::ByteView(wire.data(), 1000));
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 0u);
  EXPECT_FALSE(f.next(m));
  f.keep();
  EXPECT_EQ(f.capacity(), 65537u);
  f.feed(dns::ByteView(wire.data() + 1000, wire.size() - 1000));
  ASSERT_TRUE(f.next(m));
  EXPECT_EQ(m.size(), 65535u);
  EXPECT_EQ(m[65534], 9);
  f.keep();
  f.release();
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.capacity(), 0u);
}

}  // namespace
}  // namespace nld::server
