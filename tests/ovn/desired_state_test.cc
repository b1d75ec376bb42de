#include "ovn/desired_state.h"

#include <gtest/gtest.h>

namespace nld::ovn {
namespace {

NbSnapshot twoNodes() {
  NbSnapshot nb;
  nb.router_uuid = "r1";
  nb.node_switch_found = true;
  nb.nb_global_uuid = "g1";
  nb.nodes = {NodeJoin{"kube-ovn-worker", "node-kube-ovn-worker", "100.64.0.2", "fd00:100:64::2"},
              NodeJoin{"master", "node-master", "100.64.0.3", ""}};
  return nb;
}

ReconcileConfig dual() {
  ReconcileConfig c;
  c.dns_ips = {"169.254.20.10", "fd00::a"};
  return c;
}

Policy fromDesired(const DesiredPolicy& d, std::string uuid) {
  Policy p;
  p.uuid = std::move(uuid);
  p.priority = 30000;
  p.match = d.match;
  p.action = "reroute";
  p.nexthops = {d.nexthop};
  p.external_ids = d.external_ids;
  return p;
}

TEST(DesiredState, PortGroupAndMatch) {
  EXPECT_EQ(portGroupName("kube-ovn-worker"), "node.kube.ovn.worker");
  EXPECT_EQ(policyMatch("kube-ovn-worker", 4, "169.254.20.10"),
            "ip4.src == $node.kube.ovn.worker_ip4 && ip4.dst == 169.254.20.10");
  EXPECT_EQ(policyMatch("a-b", 6, "fd00::a"), "ip6.src == $node.a.b_ip6 && ip6.dst == fd00::a");
}

TEST(DesiredState, OnePolicyPerNodeFamilyAndDnsIp) {
  auto d = desiredPolicies(twoNodes(), dual());
  ASSERT_EQ(d.size(), 3u);  // worker v4 + v6, master v4 only (no v6 join IP)
  EXPECT_EQ(d[0].node, "kube-ovn-worker");
  EXPECT_EQ(d[0].family, 4);
  EXPECT_EQ(d[0].nexthop, "100.64.0.2");
  EXPECT_EQ(d[1].family, 6);
  EXPECT_EQ(d[1].nexthop, "fd00:100:64::2");
  EXPECT_EQ(d[1].external_ids.at("address-family"), "6");
  EXPECT_EQ(d[2].node, "master");
  EXPECT_EQ(d[2].external_ids, (std::map<std::string, std::string>{{"vendor", "kube-ovn"},
                                                                   {"node", "master"},
                                                                   {"address-family", "4"},
                                                                   {"isLocalDnsCache", "true"}}));
  ReconcileConfig two4;
  two4.dns_ips = {"169.254.20.10", "169.254.20.11"};
  EXPECT_EQ(desiredPolicies(twoNodes(), two4).size(), 4u);
}

TEST(DesiredState, ConvergedSnapshotGivesEmptyPlan) {
  auto nb = twoNodes();
  auto cfg = dual();
  int i = 0;
  for (const auto& d : desiredPolicies(nb, cfg))
    nb.policies.push_back(fromDesired(d, "p" + std::to_string(i++)));
  nb.dns_option = "169.254.20.10,fd00::a";
  auto plan = computePlan(nb, cfg);
  EXPECT_TRUE(plan.empty());
  auto ops = buildTransaction(plan, nb, cfg);
  ASSERT_TRUE(ops);
  EXPECT_TRUE(ops->empty());
}

TEST(DesiredState, DualStackNeverDeletesOtherFamily) {
  auto nb = twoNodes();
  auto cfg = dual();
  auto desired = desiredPolicies(nb, cfg);
  nb.policies.push_back(fromDesired(desired[1], "v6"));  // only the v6 one exists
  nb.dns_option = "169.254.20.10,fd00::a";
  auto plan = computePlan(nb, cfg);
  EXPECT_TRUE(plan.deletes.empty());
  EXPECT_EQ(plan.inserts.size(), 2u);
  for (const auto& ins : plan.inserts) EXPECT_EQ(ins.family, 4);
}

TEST(DesiredState, DeletesWrongDuplicateAndStaleOwnedOnly) {
  auto nb = twoNodes();
  ReconcileConfig cfg;
  cfg.dns_ips = {"169.254.20.10"};
  auto desired = desiredPolicies(nb, cfg);
  ASSERT_EQ(desired.size(), 2u);
  nb.policies.push_back(fromDesired(desired[0], "good"));
  nb.policies.push_back(fromDesired(desired[0], "dup"));
  auto wrong_hop = fromDesired(desired[1], "wronghop");
  wrong_hop.nexthops = {"100.64.0.99"};
  nb.policies.push_back(wrong_hop);
  auto stale = fromDesired(desired[1], "stale");
  stale.external_ids["node"] = "gone";
  stale.match = policyMatch("gone", 4, "169.254.20.10");
  nb.policies.push_back(stale);
  auto v6 = fromDesired(desired[0], "v6owned");  // owned v6 policy while no v6 DNS IP configured
  v6.external_ids["address-family"] = "6";
  v6.match = policyMatch("kube-ovn-worker", 6, "fd00::a");
  nb.policies.push_back(v6);
  Policy foreign;
  foreign.uuid = "foreign";
  foreign.priority = 30000;
  foreign.match = "ip4.dst == 172.18.0.2";
  foreign.action = "reroute";
  foreign.external_ids = {{"vendor", "kube-ovn"}, {"node", "gone"}};
  nb.policies.push_back(foreign);
  nb.dns_option = "169.254.20.10";
  auto plan = computePlan(nb, cfg);
  std::vector<std::string> deleted;
  for (const auto& p : plan.deletes) deleted.push_back(p.uuid);
  EXPECT_EQ(deleted, (std::vector<std::string>{"dup", "wronghop", "stale", "v6owned"}));
  ASSERT_EQ(plan.inserts.size(), 1u);
  EXPECT_EQ(plan.inserts[0].node, "master");
  EXPECT_FALSE(plan.option_change);
}

TEST(DesiredState, MissingNodeSwitchDeletesNothing) {
  auto nb = twoNodes();
  auto cfg = dual();
  int i = 0;
  for (const auto& d : desiredPolicies(nb, cfg))
    nb.policies.push_back(fromDesired(d, "p" + std::to_string(i++)));
  nb.nodes.clear();
  nb.node_switch_found = false;
  nb.dns_option = "169.254.20.10,fd00::a";
  EXPECT_TRUE(computePlan(nb, cfg).empty());
  nb.node_switch_found = true;  // switch present but empty: every node is really gone
  EXPECT_EQ(computePlan(nb, cfg).deletes.size(), 3u);
}

TEST(DesiredState, OptionSetAndRemoved) {
  auto nb = twoNodes();
  auto plan = computePlan(nb, dual());
  EXPECT_TRUE(plan.option_change);
  EXPECT_EQ(plan.option_value, "169.254.20.10,fd00::a");
  nb.dns_option = "1.2.3.4";
  plan = computePlan(nb, ReconcileConfig{});
  EXPECT_TRUE(plan.option_change);
  EXPECT_EQ(plan.option_value, std::nullopt);
  nb.dns_option.reset();
  EXPECT_TRUE(computePlan(nb, ReconcileConfig{}).empty());
}

TEST(DesiredState, TransactionIsGuardedByWait) {
  auto nb = twoNodes();
  nb.router_policy_uuids = {"existing"};
  auto cfg = dual();
  auto plan = computePlan(nb, cfg);
  auto ops = buildTransaction(plan, nb, cfg);
  ASSERT_TRUE(ops) << ops.error().message();
  ASSERT_GE(ops->size(), 5u);
  const auto& wait = (*ops)[0];
  EXPECT_EQ(wait["op"], "wait");
  EXPECT_EQ(wait["table"], "Logical_Router");
  EXPECT_EQ(wait["until"], "==");
  EXPECT_EQ(wait["rows"][0]["policies"], ovsdb::Json::parse(R"(["set",[["uuid","existing"]]])"));
  EXPECT_EQ((*ops)[1]["op"], "insert");
  EXPECT_EQ((*ops)[1]["row"]["priority"], 30000);
  EXPECT_EQ((*ops)[1]["row"]["nexthops"], ovsdb::Json::parse(R"(["set",["100.64.0.2"]])"));
  EXPECT_EQ(ops->back()["table"], "NB_Global");

  nb.router_uuid.reset();
  auto refused = buildTransaction(plan, nb, cfg);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(), "logical router ovn-cluster not found");
}

}  // namespace
}  // namespace nld::ovn
