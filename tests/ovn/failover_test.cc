// Unit tests of the fail-over agent's pure logic: the health state machine on fake time, the
// rendezvous choice, the agent's plan and transaction, and `run`'s acceptance of failed-over rows.
#include "ovn/failover.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "ovn/dns_probe.h"

namespace nld::ovn {
namespace {

using std::chrono::milliseconds;
using TimePoint = HealthTracker::TimePoint;

// ---------------------------------------------------------------------------------------------
// HealthTracker on fake time (no sleeps): rounds every 250 ms.

struct FakeClock {
  TimePoint now{};
  TimePoint tick(milliseconds d = milliseconds(250)) { return now += d; }
};

// Feeds `n` rounds of `ok`; returns the number of state changes seen.
int feed(HealthTracker& t, FakeClock& c, int n, bool ok) {
  int changes = 0;
  for (int i = 0; i < n; ++i) changes += t.observe(c.tick(), ok) ? 1 : 0;
  return changes;
}

TEST(HealthTracker, StartsUnknownAndBecomesHealthyAfterRiseOverMinSpan) {
  HealthTracker t;
  FakeClock c;
  EXPECT_EQ(t.state(), Health::kUnknown);
  // 4 good rounds at 250 ms span only 750 ms (first to last): not yet.
  EXPECT_EQ(feed(t, c, 4, true), 0);
  EXPECT_EQ(t.state(), Health::kUnknown);
  EXPECT_EQ(feed(t, c, 1, true), 1);  // 5th round: 1000 ms after the first
  EXPECT_EQ(t.state(), Health::kHealthy);
}

TEST(HealthTracker, FallsAfterThreeConsecutiveFailures) {
  HealthTracker t;
  FakeClock c;
  feed(t, c, 5, true);
  ASSERT_EQ(t.state(), Health::kHealthy);
  // Two failures, a success, two failures: never three in a row.
  feed(t, c, 2, false);
  feed(t, c, 1, true);
  feed(t, c, 2, false);
  EXPECT_EQ(t.state(), Health::kHealthy);
  EXPECT_EQ(feed(t, c, 1, false), 1);
  EXPECT_EQ(t.state(), Health::kUnhealthy);
  EXPECT_EQ(t.since(), c.now);
}

TEST(HealthTracker, FirstFailureAfterStartGetsTheBaseHold) {
  HealthTracker t;
  FakeClock c;
  feed(t, c, 5, true);  // healthy since start, only 1 s: no recovery, so no flap
  feed(t, c, 3, false);
  ASSERT_EQ(t.state(), Health::kUnhealthy);
  EXPECT_EQ(t.hold(), milliseconds(3000));
}

TEST(HealthTracker, UnknownCacheThatNeverAnswersGoesUnhealthy) {
  HealthTracker t;
  FakeClock c;
  EXPECT_EQ(feed(t, c, 3, false), 1);
  EXPECT_EQ(t.state(), Health::kUnhealthy);
}

TEST(HealthTracker, RecoveryWaitsForTheHold) {
  HealthTracker t;  // hold 3 s
  FakeClock c;
  feed(t, c, 5, true);
  c.tick(milliseconds(60000));  // long healthy period: no flap
  feed(t, c, 3, false);
  ASSERT_EQ(t.state(), Health::kUnhealthy);
  const TimePoint down = c.now;
  EXPECT_EQ(t.hold(), milliseconds(3000));
  // Answers again at once: rise is met after 1 s but the hold (3 s) is not.
  while (c.now - down < milliseconds(2750)) {
    t.observe(c.tick(), true);
    ASSERT_EQ(t.state(), Health::kUnhealthy) << (c.now - down).count();
  }
  EXPECT_TRUE(t.observe(c.tick(), true));  // 3000 ms after going down
  EXPECT_EQ(t.state(), Health::kHealthy);
}

TEST(HealthTracker, RecoveryAfterALongOutageTakesRiseMinSpan) {
  HealthTracker t;
  FakeClock c;
  feed(t, c, 3, false);
  feed(t, c, 40, false);  // 10 s dead: the hold is long over
  ASSERT_EQ(t.state(), Health::kUnhealthy);
  EXPECT_EQ(feed(t, c, 4, true), 0);
  EXPECT_EQ(feed(t, c, 1, true), 1);  // 1 s after the first answer
  EXPECT_EQ(t.state(), Health::kHealthy);
}

TEST(HealthTracker, OneFailureResetsTheRise) {
  HealthTracker t;
  FakeClock c;
  feed(t, c, 20, false);
  feed(t, c, 4, true);
  feed(t, c, 1, false);
  EXPECT_EQ(feed(t, c, 4, true), 0);  // the count starts again
  EXPECT_EQ(feed(t, c, 1, true), 1);
}

TEST(HealthTracker, FlappingDoublesTheHoldUpToTheCapAndALongHealthyPeriodResetsIt) {
  HealthOptions o;
  o.hold_max = milliseconds(20000);
  HealthTracker t(o);
  FakeClock c;
  feed(t, c, 5, true);
  c.tick(milliseconds(60000));
  std::vector<long> holds;
  int changes = 0;
  // The cache dies and comes back over and over, answering 2 s, dead 1 s.
  for (int cycle = 0; cycle < 8; ++cycle) {
    changes += feed(t, c, 4, false);
    ASSERT_EQ(t.state(), Health::kUnhealthy);
    holds.push_back(static_cast<long>(t.hold().count()));
    // Alive until the tracker lets it be healthy again, then 2 s more.
    while (t.state() != Health::kHealthy) changes += t.observe(c.tick(), true) ? 1 : 0;
    changes += feed(t, c, 8, true);
  }
  EXPECT_EQ(holds, (std::vector<long>{3000, 6000, 12000, 20000, 20000, 20000, 20000, 20000}));
  EXPECT_EQ(changes, 16);  // two transitions per cycle, whatever the flapping rate
  // Healthy for longer than stable_period: the next failure gets the base hold again.
  c.tick(milliseconds(31000));
  feed(t, c, 3, false);
  EXPECT_EQ(t.hold(), milliseconds(3000));
}

// ---------------------------------------------------------------------------------------------
// Rendezvous

TEST(Rendezvous, DeterministicAndIndependentOfInputOrder) {
  std::vector<std::string> a{"n1", "n2", "n3", "n4", "n5"};
  std::vector<std::string> b{"n5", "n3", "n1", "n4", "n2", "n3"};
  EXPECT_EQ(rendezvousPick("self", a, 3), rendezvousPick("self", b, 3));
  EXPECT_EQ(rendezvousPick("self", a, 3).size(), 3u);
  EXPECT_EQ(rendezvousPick("self", a, 10).size(), 5u);
  EXPECT_TRUE(rendezvousPick("self", {}, 3).empty());
  // Fixed values: the hash must not change between builds (nodes of different versions agree).
  EXPECT_EQ(rendezvousScore("a", "b"), rendezvousScore("a", "b"));
  EXPECT_NE(rendezvousScore("a", "b"), rendezvousScore("b", "a"));
  EXPECT_NE(rendezvousScore("ab", "c"), rendezvousScore("a", "bc"));
}

TEST(Rendezvous, RemovingACandidateMovesOnlyItsShare) {
  std::vector<std::string> nodes;
  for (int i = 0; i < 20; ++i) nodes.push_back("node-" + std::to_string(i));
  const auto before = rendezvousPick("failing", nodes, 3);
  // Removing a node that was not picked changes nothing.
  for (const auto& n : nodes) {
    if (std::find(before.begin(), before.end(), n) != before.end()) continue;
    auto fewer = nodes;
    fewer.erase(std::find(fewer.begin(), fewer.end(), n));
    EXPECT_EQ(rendezvousPick("failing", fewer, 3), before) << n;
  }
  // Removing a picked one keeps the other two, in order, and adds the 4th ranked.
  auto fewer = nodes;
  fewer.erase(std::find(fewer.begin(), fewer.end(), before[0]));
  auto after = rendezvousPick("failing", fewer, 3);
  EXPECT_EQ(after[0], before[1]);
  EXPECT_EQ(after[1], before[2]);
  EXPECT_EQ(rendezvousPick("failing", nodes, 4)[3], after[2]);
}

TEST(Rendezvous, LoadSpreadsOverNeighbours) {
  // 1000 failing nodes each pick 1 of 10 healthy ones: every healthy node gets a fair share.
  std::vector<std::string> healthy;
  for (int i = 0; i < 10; ++i) healthy.push_back("h" + std::to_string(i));
  std::map<std::string, int> load;
  for (int i = 0; i < 1000; ++i) load[rendezvousPick("f" + std::to_string(i), healthy, 1)[0]]++;
  ASSERT_EQ(load.size(), 10u);
  for (const auto& [n, count] : load) {
    EXPECT_GT(count, 60) << n;  // expected 100; a broken hash piles them up
    EXPECT_LT(count, 140) << n;
  }
}

// ---------------------------------------------------------------------------------------------
// The agent's plan

const std::string kDns = "169.254.20.10";

Policy healthyRow(const std::string& node, const std::string& join, const std::string& uuid) {
  Policy p;
  p.uuid = uuid;
  p.priority = 30000;
  p.match = policyMatch(node, 4, kDns);
  p.action = "reroute";
  p.nexthops = {join};
  p.external_ids = policyExternalIds(node, 4);
  return p;
}

NbSnapshot cluster(int n) {
  NbSnapshot nb;
  nb.router_uuid = "r";
  nb.node_switch_found = true;
  for (int i = 1; i <= n; ++i) {
    const std::string name = "n" + std::to_string(i);
    const std::string join = "100.64.0." + std::to_string(i + 1);
    nb.nodes.push_back(NodeJoin{name, "node-" + name, join, ""});
    nb.policies.push_back(healthyRow(name, join, "u" + std::to_string(i)));
  }
  return nb;
}

AgentConfig agentFor(const std::string& node) {
  AgentConfig c;
  c.node = node;
  c.reconcile.dns_ips = {kDns};
  return c;
}

std::map<std::string, Health> health(Health h) { return {{kDns, h}}; }

TEST(AgentPlan, HealthyAndConvergedWritesNothing) {
  auto nb = cluster(3);
  EXPECT_TRUE(planAgent(nb, agentFor("n1"), health(Health::kHealthy)).updates.empty());
  EXPECT_TRUE(planAgent(nb, agentFor("n1"), health(Health::kUnknown)).updates.empty());
  EXPECT_TRUE(planAgent(nb, agentFor("n1"), {}).updates.empty());
}

TEST(AgentPlan, UnhealthyFailsOverToRendezvousChosenHealthyNeighbours) {
  auto nb = cluster(6);
  auto plan = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  ASSERT_EQ(plan.updates.size(), 1u);
  const auto& u = plan.updates[0];
  EXPECT_EQ(u.current.uuid, "u1");
  const auto picked = rendezvousPick("n1", {"n2", "n3", "n4", "n5", "n6"}, 3);
  std::vector<std::string> joins;
  for (const auto& p : picked)
    joins.push_back("100.64.0." + std::to_string(std::stoi(p.substr(1)) + 1));
  std::sort(joins.begin(), joins.end());
  EXPECT_EQ(u.nexthops, joins);
  EXPECT_EQ(u.external_ids.at(kFailoverStateKey), "unhealthy");
  EXPECT_EQ(u.external_ids.at(kFailoverToKey), picked[0] + "," + picked[1] + "," + picked[2]);
  for (const auto& [k, v] : policyExternalIds("n1", 4)) EXPECT_EQ(u.external_ids.at(k), v);

  // Applied: the next plan is empty (no churn), and run's computePlan accepts the row.
  nb.policies[0].nexthops = u.nexthops;
  nb.policies[0].external_ids = u.external_ids;
  EXPECT_TRUE(planAgent(nb, agentFor("n1"), health(Health::kUnhealthy)).updates.empty());
  ReconcileConfig rc;
  rc.dns_ips = {kDns};
  nb.dns_option = kDns;
  EXPECT_TRUE(computePlan(nb, rc).empty());

  // Healthy again: exactly Kube-OVN's shape (markers removed, own nexthop).
  auto back = planAgent(nb, agentFor("n1"), health(Health::kHealthy));
  ASSERT_EQ(back.updates.size(), 1u);
  EXPECT_EQ(back.updates[0].nexthops, std::vector<std::string>{"100.64.0.2"});
  EXPECT_EQ(back.updates[0].external_ids, policyExternalIds("n1", 4));
}

TEST(AgentPlan, FailedOverNeighboursAreNotChosenAndNoHealthyNeighbourKeepsOwnNexthop) {
  auto nb = cluster(3);
  // n2 failed over (marker), n3 points elsewhere: neither is healthy.
  nb.policies[1].external_ids[kFailoverStateKey] = "unhealthy";
  nb.policies[2].nexthops = {"100.64.0.2"};
  EXPECT_TRUE(healthyNeighbours(nb, agentFor("n1").reconcile, "n1", kDns).empty());
  auto plan = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  ASSERT_EQ(plan.updates.size(), 1u);
  EXPECT_EQ(plan.updates[0].nexthops, std::vector<std::string>{"100.64.0.2"});
  EXPECT_EQ(plan.updates[0].external_ids.at(kFailoverStateKey), "unhealthy");
  EXPECT_EQ(plan.updates[0].external_ids.at(kFailoverToKey), "");
  // n3 becomes healthy again: n1 moves to it.
  nb.policies[2].nexthops = {"100.64.0.4"};
  nb.policies[0].external_ids = plan.updates[0].external_ids;
  auto moved = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  ASSERT_EQ(moved.updates.size(), 1u);
  EXPECT_EQ(moved.updates[0].nexthops, std::vector<std::string>{"100.64.0.4"});
  EXPECT_EQ(moved.updates[0].external_ids.at(kFailoverToKey), "n3");
}

TEST(AgentPlan, TouchesOnlyOwnRowsAndKeepsForeignExternalIds) {
  auto nb = cluster(3);
  nb.policies[0].external_ids["someone-elses"] = "x";
  // A foreign (not owned) policy with n1's match is never touched.
  Policy foreign = healthyRow("n1", "100.64.0.2", "f");
  foreign.external_ids.erase("isLocalDnsCache");
  nb.policies.push_back(foreign);
  auto plan = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  ASSERT_EQ(plan.updates.size(), 1u);
  EXPECT_EQ(plan.updates[0].current.uuid, "u1");
  EXPECT_EQ(plan.updates[0].external_ids.at("someone-elses"), "x");
}

TEST(AgentPlan, MissingNodeOrRowIsANoteNotAWrite) {
  auto nb = cluster(2);
  auto plan = planAgent(nb, agentFor("ghost"), health(Health::kUnhealthy));
  EXPECT_TRUE(plan.updates.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  nb.policies.erase(nb.policies.begin());
  plan = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  EXPECT_TRUE(plan.updates.empty());
  ASSERT_EQ(plan.notes.size(), 1u);
  EXPECT_NE(plan.notes[0].find("only updates"), std::string::npos);
}

TEST(AgentPlan, TransactionIsGuardedByAWaitOnTheRow) {
  auto nb = cluster(2);
  auto plan = planAgent(nb, agentFor("n1"), health(Health::kUnhealthy));
  auto ops = buildAgentTransaction(plan.updates);
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0]["op"], "wait");
  EXPECT_EQ(ops[0]["until"], "==");
  EXPECT_EQ(ops[0]["where"][0][2][1], "u1");
  EXPECT_EQ(ops[1]["op"], "update");
  EXPECT_EQ(ops[1]["row"]["nexthops"], ovsdb::makeStringSet({"100.64.0.3"}));
}

// ---------------------------------------------------------------------------------------------
// run's acceptance of failed-over rows

TEST(FailoverAcceptable, OnlyMarkedRowsWithCurrentJoinIps) {
  auto nb = cluster(3);
  ReconcileConfig rc;
  rc.dns_ips = {kDns};
  nb.dns_option = kDns;
  const auto desired = desiredPolicies(nb, rc);
  Policy p = nb.policies[0];
  p.nexthops = {"100.64.0.3", "100.64.0.4"};
  EXPECT_FALSE(failoverAcceptable(p, desired[0], 30000, nb));  // no marker: run restores it
  p.external_ids[kFailoverStateKey] = kFailoverStateUnhealthy;
  EXPECT_TRUE(failoverAcceptable(p, desired[0], 30000, nb));
  p.nexthops = {"100.64.0.3", "100.64.9.9"};  // a node that is gone
  EXPECT_FALSE(failoverAcceptable(p, desired[0], 30000, nb));
  p.nexthops = {};
  EXPECT_FALSE(failoverAcceptable(p, desired[0], 30000, nb));
  p.nexthops = {"100.64.0.3"};
  p.priority = 31000;
  EXPECT_FALSE(failoverAcceptable(p, desired[0], 30000, nb));
  // In computePlan: an unacceptable marked row is replaced by the healthy one.
  nb.policies[0] = p;
  auto plan = computePlan(nb, rc);
  ASSERT_EQ(plan.deletes.size(), 1u);
  ASSERT_EQ(plan.inserts.size(), 1u);
  EXPECT_EQ(plan.inserts[0].nexthop, "100.64.0.2");
}

TEST(DnsProber, MessageIsAStatusQueryForTheRoot) {
  auto m = DnsProber::message(0xabcd);
  ASSERT_EQ(m.size(), 17u);
  EXPECT_EQ(m[0], 0xab);
  EXPECT_EQ(m[1], 0xcd);
  EXPECT_EQ((m[2] >> 3) & 0xf, 2);  // opcode STATUS
  EXPECT_EQ(m[2] & 0x80, 0);        // a query
  EXPECT_EQ(m[5], 1);               // QDCOUNT 1
}

}  // namespace
}  // namespace nld::ovn
