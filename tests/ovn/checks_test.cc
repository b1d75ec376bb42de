#include "ovn/checks.h"

#include <gtest/gtest.h>

#include "ovn/ip.h"

namespace nld::ovn {
namespace {

bool has(const std::vector<Finding>& f, Finding::Kind k) {
  for (const auto& x : f) {
    if (x.kind == k) return true;
  }
  return false;
}

NbSnapshot healthy(const ReconcileConfig& cfg) {
  NbSnapshot nb;
  nb.router_uuid = "r";
  nb.node_switch_found = true;
  nb.nodes = {NodeJoin{"w1", "node-w1", "100.64.0.2", ""}};
  nb.port_groups["node.w1"] = {"10.16.0.5"};
  nb.dns_option = "169.254.20.10";
  Policy p;
  p.uuid = "p1";
  p.priority = 30000;
  p.match = policyMatch("w1", 4, "169.254.20.10");
  p.action = "reroute";
  p.nexthops = {"100.64.0.2"};
  p.external_ids = policyExternalIds("w1", 4);
  nb.policies.push_back(p);
  (void)cfg;
  return nb;
}

ReconcileConfig cfg4() {
  ReconcileConfig c;
  c.dns_ips = {"169.254.20.10"};
  return c;
}

TEST(Ip, FamilyAndCidr) {
  EXPECT_EQ(ipFamily("10.0.0.1"), 4);
  EXPECT_EQ(ipFamily("fd00::1"), 6);
  EXPECT_EQ(ipFamily("10.0.0.256"), 0);
  EXPECT_EQ(ipFamily(""), 0);
  EXPECT_TRUE(ipInCidr("10.16.0.5", "10.16.0.0/16"));
  EXPECT_FALSE(ipInCidr("10.17.0.5", "10.16.0.0/16"));
  EXPECT_TRUE(ipInCidr("10.16.0.5", "10.16.0.5"));
  EXPECT_TRUE(ipInCidr("fd00::5", "fd00::/64"));
  EXPECT_FALSE(ipInCidr("fd00::5", "10.0.0.0/8"));
  EXPECT_FALSE(ipInCidr("10.0.0.1", "10.0.0.0/33"));
  EXPECT_FALSE(ipInCidr("10.0.0.1", "10.0.0.0/x"));
  EXPECT_EQ(canonicalIp("FD00:0::A"), "fd00::a");
}

TEST(Checks, ParsesMatchOperands) {
  EXPECT_EQ(matchOperands("ip4.src == $eip && ip4.dst == 1.2.3.4", "src"),
            std::vector<std::string>{"$eip"});
  EXPECT_EQ(matchOperands("ip4.src == $eip && ip4.dst == 1.2.3.4", "dst"),
            std::vector<std::string>{"1.2.3.4"});
  EXPECT_EQ(matchOperands("ip.src == {10.0.0.0/8, $as} && tcp", "src"),
            (std::vector<std::string>{"10.0.0.0/8", "$as"}));
  EXPECT_TRUE(matchOperands("ip4.dst == 1.2.3.4", "src").empty());
}

TEST(Checks, HealthyHasNoFindings) {
  auto cfg = cfg4();
  auto nb = healthy(cfg);
  auto f = runChecks(nb, cfg, computePlan(nb, cfg));
  EXPECT_TRUE(f.empty()) << formatReport(nb, cfg, f);
  EXPECT_NE(formatReport(nb, cfg, f).find("OK"), std::string::npos);
}

TEST(Checks, ReportsMissingThings) {
  auto cfg = cfg4();
  auto nb = healthy(cfg);
  nb.port_groups.clear();
  nb.policies.clear();
  nb.underlay_switches = {UnderlaySwitch{"vlan1", false}, UnderlaySwitch{"vlan2", true}};
  auto f = runChecks(nb, cfg, computePlan(nb, cfg));
  EXPECT_TRUE(has(f, Finding::Kind::kPortGroupMissing));
  EXPECT_TRUE(has(f, Finding::Kind::kPolicyMissing));
  EXPECT_TRUE(has(f, Finding::Kind::kUnderlayUnconnected));
  int underlay = 0;
  for (const auto& x : f) underlay += x.kind == Finding::Kind::kUnderlayUnconnected;
  EXPECT_EQ(underlay, 1);
  NbSnapshot empty;
  auto g = runChecks(empty, cfg, computePlan(empty, cfg));
  EXPECT_TRUE(has(g, Finding::Kind::kRouterMissing));
  EXPECT_TRUE(has(g, Finding::Kind::kNodeSwitchMissing));
}

TEST(Checks, ShadowingHigherPriorityPolicy) {
  auto cfg = cfg4();
  auto nb = healthy(cfg);
  Policy eip;
  eip.uuid = "eip";
  eip.priority = 31000;
  eip.action = "reroute";
  eip.match = "ip4.src == $eip_pods";
  nb.address_sets["eip_pods"] = {"10.16.0.0/24"};
  nb.policies.push_back(eip);
  EXPECT_TRUE(has(runChecks(nb, cfg, computePlan(nb, cfg)), Finding::Kind::kShadowingPolicy));
  // Lower priority: harmless.
  nb.policies.back().priority = 29000;
  EXPECT_FALSE(has(runChecks(nb, cfg, computePlan(nb, cfg)), Finding::Kind::kShadowingPolicy));
  // Higher, but the destination excludes the DNS IP: harmless.
  nb.policies.back().priority = 31000;
  nb.policies.back().match = "ip4.src == $eip_pods && ip4.dst == 172.18.0.0/16";
  EXPECT_FALSE(has(runChecks(nb, cfg, computePlan(nb, cfg)), Finding::Kind::kShadowingPolicy));
  // Source set not overlapping the node's pods: harmless.
  nb.policies.back().match = "ip4.src == 192.168.0.0/16";
  EXPECT_FALSE(has(runChecks(nb, cfg, computePlan(nb, cfg)), Finding::Kind::kShadowingPolicy));
  // Direct reference to the node's port group address set.
  nb.policies.back().match = "ip4.src == $node.w1_ip4";
  EXPECT_TRUE(has(runChecks(nb, cfg, computePlan(nb, cfg)), Finding::Kind::kShadowingPolicy));
}

TEST(NbSnapshot, IpsFromAddresses) {
  EXPECT_EQ(ipsFromAddresses({"00:00:00:aa:bb:cc 100.64.0.2 fd00:100:64::2"}),
            (std::vector<std::string>{"100.64.0.2", "fd00:100:64::2"}));
  EXPECT_TRUE(ipsFromAddresses({"router", "unknown", "dynamic"}).empty());
  EXPECT_EQ(ipsFromAddresses({"00:00:00:aa:bb:cc 10.0.0.1/24"}),
            std::vector<std::string>{"10.0.0.1"});
}

}  // namespace
}  // namespace nld::ovn
