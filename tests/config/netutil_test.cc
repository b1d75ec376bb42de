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
  auto z = reverseZonesForCidr("10.1.2.3/16");
  ASSERT_TRUE(z.has_value() && z->ok());
  EXPECT_EQ(**z, std::vector<std::string>{"1.10.in-addr.arpa."});
  z = reverseZonesForCidr("10.0.0.0/23");
  ASSERT_TRUE(z.has_value() && z->ok());
  EXPECT_EQ(**z, (std::vector<std::string>{"0.0.10.in-addr.arpa.", "1.0.10.in-addr.arpa."}));
  z = reverseZonesForCidr("fd00::/8");
  ASSERT_TRUE(z.has_value() && z->ok());
  EXPECT_EQ(**z, std::vector<std::string>{"d.f.ip6.arpa."});
  z = reverseZonesForCidr("10.0.0.0/33");
  ASSERT_TRUE(z.has_value());
  ASSERT_FALSE(z->ok());
  EXPECT_EQ(z->error().message(), "'10.0.0.0/33' is not a valid CIDR");
  EXPECT_FALSE(reverseZonesForCidr("example.org").has_value()) << "not a CIDR at all";
}

TEST(NormalizeZones, NamesAndCidrsOrTheReason) {
  auto z = normalizeZones("Example.ORG");
  ASSERT_TRUE(z.ok()) << z.error().message();
  EXPECT_EQ(*z, std::vector<std::string>{"example.org."});
  z = normalizeZones("10.0.0.0/8");
  ASSERT_TRUE(z.ok()) << z.error().message();
  EXPECT_EQ(*z, std::vector<std::string>{"10.in-addr.arpa."});
  z = normalizeZones("fd00::/129");
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.error().message(), "'fd00::/129' is not a valid CIDR");
  z = normalizeZones("bad name");
  ASSERT_FALSE(z.ok());
  EXPECT_EQ(z.error().message(), "'bad name' is not a valid domain name");
  EXPECT_EQ(normalizeName(std::string(300, 'a')).error().message(),
            "'" + std::string(300, 'a') + "' is not a valid domain name");  // 300-octet label
}

TEST(SplitHostPort, GoMessages) {
  auto hp = splitHostPort("[fd00::1]:53");
  ASSERT_TRUE(hp.ok()) << hp.error().message();
  EXPECT_EQ(hp->host, "fd00::1");
  EXPECT_EQ(hp->port, "53");
  hp = splitHostPort(":8080");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "");
  EXPECT_EQ(hp->port, "8080");
  EXPECT_EQ(splitHostPort("10.0.0.1").error().message(),
            "address 10.0.0.1: missing port in address");
  EXPECT_EQ(splitHostPort("fd00::1:53").error().message(),
            "address fd00::1:53: too many colons in address");
  EXPECT_EQ(splitHostPort("[fd00::1]x:53").error().message(),
            "address [fd00::1]x:53: unexpected character after ']'");
}

}  // namespace
}  // namespace nld::config::detail
