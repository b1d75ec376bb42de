#pragma once
// Desired NB state for NodeLocal DNS on Kube-OVN (as kube-ovn-controller's node.go) and the diff
// against the current snapshot. Pure logic: no I/O, fully unit-testable.
//
//  * one Logical_Router_Policy per (node, family, DNS IP of that family) on the cluster router:
//    priority P, match "ip4.src == $node.<n>_ip4 && ip4.dst == <dns>", action reroute,
//    nexthops [node's join IP of that family], external_ids vendor=kube-ovn, node=<n>,
//    address-family=<4|6>, isLocalDnsCache=true;
//  * NB_Global.options:node_local_dns_ip = comma-joined DNS IPs (key removed when none).
//
// Ownership: a policy is ours iff its external_ids carry isLocalDnsCache=true (and
// vendor=kube-ovn). Only owned policies are ever deleted. Both families are computed in one pass,
// so the v4 and v6 sets never delete each other's policies (kube-ovn's pre-#6497 bug).
//
// Thread affinity: pure functions.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ovn/nb_snapshot.h"
#include "ovsdb/datum.h"

namespace nld::ovn {

struct ReconcileConfig {
  std::string router = "ovn-cluster";
  std::string node_switch = "join";
  int64_t priority = 30000;
  std::vector<std::string> dns_ips;  ///< validated IP literals, in flag order
};

struct DesiredPolicy {
  std::string node;
  int family = 4;
  std::string dns_ip;
  std::string match;
  std::string nexthop;
  std::map<std::string, std::string> external_ids;
};

/// "node.<node>" with every '-' replaced by '.' (kube-ovn's node port group name).
std::string portGroupName(const std::string& node);

/// "ip4.src == $node.<n>_ip4 && ip4.dst == <dns>" (ip6 likewise).
std::string policyMatch(const std::string& node, int family, const std::string& dns_ip);

/// external_ids of the node's policies of one family.
std::map<std::string, std::string> policyExternalIds(const std::string& node, int family);

/// True if the policy was written by (and belongs to) the local-DNS reconciler.
bool isOwned(const Policy& policy);

/// The policies that should exist, ordered by node, family, DNS IP order.
std::vector<DesiredPolicy> desiredPolicies(const NbSnapshot& nb, const ReconcileConfig& config);

/// True if an existing policy is exactly the desired one (priority, action, match, nexthops,
/// no deprecated nexthop, and the four external_ids).
bool policyMatches(const Policy& existing, const DesiredPolicy& desired, int64_t priority);

/// What must change. Empty plan = nothing to write (no transaction is sent).
struct Plan {
  std::vector<Policy> deletes;         ///< owned policies to remove (wrong, duplicate or stale)
  std::vector<DesiredPolicy> inserts;  ///< desired policies missing
  bool option_change = false;          ///< NB_Global option must be set/removed
  std::optional<std::string> option_value;  ///< new value; nullopt = remove the key
  bool empty() const { return deletes.empty() && inserts.empty() && !option_change; }
  std::size_t changeCount() const {
    return deletes.size() + inserts.size() + (option_change ? 1 : 0);
  }
};

/// An owned policy carrying the fail-over agent's marker is kept as long as
/// failoverAcceptable() holds (its nexthops are current join IPs), never rewritten.
/// If the node switch does not exist, no policy is inserted or deleted (only the option is
/// reconciled): a wrong --node-switch must not wipe every node's policies.
Plan computePlan(const NbSnapshot& nb, const ReconcileConfig& config);

/// The transact operations implementing `plan`, guarded by "wait" operations on the router's
/// policies column (and on NB_Global's absence when inserting it) so a concurrent writer makes
/// the transaction fail instead of duplicating policies.
/// @return the operations, or an error if the plan cannot be applied (e.g. no cluster router).
Result<ovsdb::Json> buildTransaction(const Plan& plan, const NbSnapshot& nb,
                                     const ReconcileConfig& config);

}  // namespace nld::ovn
