// canonicalIp and reverseZonesForCidr parse IP literals through net::parseIp; these pin the
// spellings the Corefile parser accepts and prints.
#include "config/netutil.h"

#include <gtest/gtest.h>

namespace nld::config::detail {
namespace {

TEST(CanonicalIp, Forms) {
  EXPECT_EQ(canonicalIp("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(canonicalIp("2001:DB8:0:0::1"), "2001:db8::1");
  // A v4-mapped IPv6 literal keeps its IPv6 form (inet_ntop's), unlike SockAddr::ip().
  EXPECT_EQ(canonicalIp("::FFFF:10.0.0.1"), "::ffff:10.0.0.1");
  EXPECT_EQ(canonicalIp("fe80::1%eth0"), "fe80::1%eth0");
  EXPECT_EQ(canonicalIp("fe80::1%eth0", false), std::nullopt);
  EXPECT_EQ(canonicalIp("10.0.0.1%eth0"), std::nullopt) << "zones belong to IPv6";
  EXPECT_EQ(canonicalIp("fe80::1%"), std::nullopt);
  for (const char* bad : {"", "example.org", "10.0.0", "10.0.0.256", "::g", "[::1]"}) {
    EXPECT_EQ(canonicalIp(bad), std::nullopt) << bad;
  }
}

TEST(ReverseZonesForCidr, Ipv4AndIpv6) {
  std::string error;
  auto z = reverseZonesForCidr("10.1.2.3/16", &error);
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(*z, std::vector<std::string>{"1.10.in-addr.arpa."});
  z = reverseZonesForCidr("10.0.0.0/23", &error);
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(*z, (std::vector<std::string>{"0.0.10.in-addr.arpa.", "1.0.10.in-addr.arpa."}));
  z = reverseZonesForCidr("fd00::/8", &error);
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(*z, std::vector<std::string>{"d.f.ip6.arpa."});
  EXPECT_TRUE(error.empty()) << error;
  z = reverseZonesForCidr("10.0.0.0/33", &error);
  ASSERT_TRUE(z.has_value());
  EXPECT_TRUE(z->empty());
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace nld::config::detail
