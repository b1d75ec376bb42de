#include "net/address.h"

#include <array>
#include <stdexcept>

#include "gtest/gtest.h"
#include "net/socket.h"

namespace nld::net {
namespace {

TEST(SockAddr, ParsesIpv4) {
  const SockAddr a = makeSockAddr("192.0.2.7", 53);
  EXPECT_EQ(a.af(), AF_INET);
  EXPECT_EQ(a.len, sizeof(sockaddr_in));
  EXPECT_EQ(a.family(), 1);
  EXPECT_EQ(a.ip(), "192.0.2.7");
  EXPECT_EQ(a.port(), 53);
  EXPECT_EQ(a.toString(), "192.0.2.7:53");
  std::array<uint8_t, 16> b{};
  ASSERT_EQ(a.addressBytes(b), 4u);
  EXPECT_EQ(b[0], 192);
  EXPECT_EQ(b[3], 7);
}

TEST(SockAddr, ParsesIpv6AndV4Mapped) {
  const SockAddr a = makeSockAddr("2001:db8::1", 5353);
  EXPECT_EQ(a.af(), AF_INET6);
  EXPECT_EQ(a.len, sizeof(sockaddr_in6));
  EXPECT_EQ(a.family(), 2);
  EXPECT_EQ(a.toString(), "[2001:db8::1]:5353");
  std::array<uint8_t, 16> b{};
  ASSERT_EQ(a.addressBytes(b), 16u);
  EXPECT_EQ(b[0], 0x20);
  EXPECT_EQ(b[15], 1);

  // CoreDNS labels a v4-mapped peer as IPv4 and prints it dotted.
  const SockAddr m = makeSockAddr("::ffff:10.0.0.1", 53);
  EXPECT_EQ(m.af(), AF_INET6);
  EXPECT_EQ(m.family(), 1);
  EXPECT_EQ(m.ip(), "10.0.0.1");
}

TEST(SockAddr, ZoneSetsTheScope) {
  const auto a = parseSockAddr("fe80::1%lo", 53);
  ASSERT_TRUE(a.has_value());
  EXPECT_NE(reinterpret_cast<const sockaddr_in6*>(&a->storage)->sin6_scope_id, 0u);
  EXPECT_FALSE(isIpLiteral("fe80::1%lo"));
  EXPECT_TRUE(isIpLiteral("fe80::1"));
}

TEST(SockAddr, RejectsWhatIsNotAnIpLiteral) {
  for (const char* bad : {"", "example.com", "1.2.3", "1.2.3.4.5", "256.1.1.1", "::g", "1.2.3.4:53",
                          "[::1]", " 1.2.3.4"}) {
    EXPECT_FALSE(parseSockAddr(bad, 53).has_value()) << bad;
    EXPECT_FALSE(isIpLiteral(bad)) << bad;
  }
  try {
    makeSockAddr("example.com", 53);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "not an IP address: 'example.com'");
  }
}

TEST(SockAddr, Wildcard) {
  EXPECT_TRUE(isWildcard(""));
  EXPECT_TRUE(isWildcard("0.0.0.0"));
  EXPECT_TRUE(isWildcard("::"));
  EXPECT_FALSE(isWildcard("127.0.0.1"));
}

TEST(Socket, BindsOwnedSocketsOnLoopback) {
  Fd udp = bindUdp("127.0.0.1", 0, 1 << 16, 1 << 16);
  ASSERT_TRUE(udp);
  SockAddr bound;
  bound.len = sizeof(bound.storage);
  ASSERT_EQ(::getsockname(udp.get(), bound.get(), &bound.len), 0);
  EXPECT_EQ(bound.ip(), "127.0.0.1");
  EXPECT_NE(bound.port(), 0);

  Fd tcp = listenTcp("127.0.0.1", 0);
  ASSERT_TRUE(tcp);
  int acc = 0;
  socklen_t al = sizeof(acc);
  ASSERT_EQ(::getsockopt(tcp.get(), SOL_SOCKET, SO_ACCEPTCONN, &acc, &al), 0);
  EXPECT_EQ(acc, 1);
}

TEST(Socket, BindFailureNamesTheAddress) {
  // 192.0.2.1 (TEST-NET-1) is not on this host: bind fails with EADDRNOTAVAIL, as in CoreDNS.
  try {
    bindUdp("192.0.2.1", 0, 1 << 16, 1 << 16);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("listen udp 192.0.2.1:0: ", 0), 0u) << e.what();
  }
  EXPECT_THROW(listenTcp("not-an-ip", 0), std::runtime_error);
}

}  // namespace
}  // namespace nld::net
