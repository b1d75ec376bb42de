// Logic of the nftables backend that needs no kernel: the translation of the shared rule list and
// -firewall=auto's decision. The netlink side is tested as root in nftables_root_test.cc.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "node/nftables.h"

namespace nld::node {
namespace {

std::vector<LocalIp> one(const char* text) {
  LocalIp ip;
  EXPECT_TRUE(parseLocalIp(text, &ip));
  return {ip};
}

TEST(NftRuleSpecs, TranslatesEveryIptablesRuleOneToOne) {
  const auto rules = nodeLocalDnsRules(one("169.254.20.10"), 53, 8080);
  const auto specs_or = nftRuleSpecs(rules);
  ASSERT_TRUE(specs_or.ok()) << specs_or.error().message();
  const std::vector<NftRuleSpec>& specs = *specs_or;
  ASSERT_EQ(specs.size(), rules.size());
  const std::string skip = " comment \"NodeLocal DNS Cache: skip conntrack\"";
  const std::string allow = " comment \"NodeLocal DNS Cache: allow DNS traffic\"";
  EXPECT_EQ(specs[0].chain, "raw-prerouting");
  EXPECT_EQ(specs[0].text, "ip daddr 169.254.20.10 tcp dport 53 notrack" + skip);
  EXPECT_EQ(specs[3].chain, "filter-input");
  EXPECT_EQ(specs[3].text, "ip daddr 169.254.20.10 udp dport 53 accept" + allow);
  EXPECT_EQ(specs[6].chain, "filter-output");
  EXPECT_EQ(specs[6].text, "ip saddr 169.254.20.10 tcp sport 53 accept" + allow);
  EXPECT_EQ(specs[11].chain, "raw-output");
  EXPECT_EQ(specs[11].text, "ip saddr 169.254.20.10 tcp sport 8080 notrack" + skip);
}

TEST(NftRuleSpecs, Ipv6UsesCanonicalAddress) {
  const auto specs_or = nftRuleSpecs(nodeLocalDnsRules(one("fd00:0::10"), 53, 8080));
  ASSERT_TRUE(specs_or.ok()) << specs_or.error().message();
  const std::vector<NftRuleSpec>& specs = *specs_or;
  EXPECT_EQ(
      specs[1].text,
      "ip6 daddr fd00::10 udp dport 53 notrack comment \"NodeLocal DNS Cache: skip conntrack\"");
}

TEST(NftRuleSpecs, DualStackListHasBothFamiliesInOneTable) {
  // -localip 169.254.20.10,fd00::10: the 12 rules of each address, each matching its own family.
  std::vector<LocalIp> ips = one("169.254.20.10");
  ips.push_back(one("fd00::10").front());
  const auto specs_or = nftRuleSpecs(nodeLocalDnsRules(ips, 53, 8080));
  ASSERT_TRUE(specs_or.ok()) << specs_or.error().message();
  const std::vector<NftRuleSpec>& specs = *specs_or;
  ASSERT_EQ(specs.size(), 24u);
  for (size_t i = 0; i < specs.size(); ++i) {
    const std::string want = i < 12 ? "ip " : "ip6 ";
    EXPECT_EQ(specs[i].text.rfind(want, 0), 0u) << i << ": " << specs[i].text;
  }
  EXPECT_EQ(specs[12].text.rfind("ip6 daddr fd00::10 tcp dport 53 notrack", 0), 0u)
      << specs[12].text;
}

TEST(NftRuleSpecs, RejectsRulesOutsideItsChains) {
  IptablesRule r{"nat", "PREROUTING", "udp", "", "10.0.0.1", 0, 53, "DNAT", ""};
  auto specs = nftRuleSpecs({r});
  ASSERT_FALSE(specs.ok());
  EXPECT_EQ(specs.error().message(), "nftables: no chain for iptables nat/PREROUTING");
  r = {"raw", "OUTPUT", "sctp", "", "10.0.0.1", 0, 53, "NOTRACK", ""};
  specs = nftRuleSpecs({r});
  ASSERT_FALSE(specs.ok());
  EXPECT_EQ(specs.error().message(), "nftables: protocol sctp in " + r.toString());
  r = {"raw", "OUTPUT", "udp", "", "10.0.0.1", 0, 53, "DROP", ""};
  EXPECT_FALSE(nftRuleSpecs({r}).ok());
  r = {"raw", "OUTPUT", "udp", "10.0.0.1", "", 0, 53, "NOTRACK", ""};  // saddr with dport
  EXPECT_FALSE(nftRuleSpecs({r}).ok());
}

TEST(ChooseFirewall, ExplicitChoicesAreKept) {
  EXPECT_EQ(chooseFirewallFrom(Firewall::kIptables, {{"ip", "kube-proxy"}}, "", false).firewall,
            Firewall::kIptables);
  EXPECT_EQ(chooseFirewallFrom(Firewall::kNftables, {}, "", true).firewall, Firewall::kNftables);
}

TEST(ChooseFirewall, AutoFollowsKubeProxyThenPath) {
  FirewallChoice c = chooseFirewallFrom(Firewall::kAuto, {{"ip6", "kube-proxy"}}, "", true);
  EXPECT_EQ(c.firewall, Firewall::kNftables);
  EXPECT_EQ(c.reason, "kube-proxy runs in nftables mode (table ip6 kube-proxy exists)");
  EXPECT_EQ(chooseFirewallFrom(Firewall::kAuto, {{"inet", "kube-proxy"}}, "", true).firewall,
            Firewall::kNftables);
  // iptables-nft's tables and other families' kube-proxy tables do not count.
  c = chooseFirewallFrom(Firewall::kAuto, {{"ip", "filter"}, {"bridge", "kube-proxy"}}, "", true);
  EXPECT_EQ(c.firewall, Firewall::kIptables);
  EXPECT_EQ(c.reason, "no kube-proxy nftables table and iptables is on PATH");
  c = chooseFirewallFrom(Firewall::kAuto, {}, "", false);
  EXPECT_EQ(c.firewall, Firewall::kNftables);
  EXPECT_EQ(c.reason, "no iptables binary on PATH");
  c = chooseFirewallFrom(Firewall::kAuto, {}, "netlink socket: Operation not permitted", true);
  EXPECT_EQ(c.firewall, Firewall::kIptables);
  EXPECT_NE(c.reason.find("Operation not permitted"), std::string::npos);
}

}  // namespace
}  // namespace nld::node
