#include "ovn/desired_state.h"

#include <algorithm>
#include <set>

#include "ovn/failover.h"
#include "ovn/ip.h"

namespace nld::ovn {

using ovsdb::Json;

std::string portGroupName(const std::string& node) {
  std::string pg = "node-" + node;
  std::replace(pg.begin(), pg.end(), '-', '.');
  return pg;
}

std::string policyMatch(const std::string& node, int family, const std::string& dns_ip) {
  const std::string ip = family == 6 ? "ip6" : "ip4";
  return ip + ".src == $" + portGroupName(node) + "_" + ip + " && " + ip + ".dst == " + dns_ip;
}

std::map<std::string, std::string> policyExternalIds(const std::string& node, int family) {
  return {{"vendor", "kube-ovn"},
          {"node", node},
          {"address-family", std::to_string(family)},
          {"isLocalDnsCache", "true"}};
}

bool isOwned(const Policy& policy) {
  auto it = policy.external_ids.find("isLocalDnsCache");
  auto vendor = policy.external_ids.find("vendor");
  return it != policy.external_ids.end() && it->second == "true" &&
         vendor != policy.external_ids.end() && vendor->second == "kube-ovn";
}

std::vector<DesiredPolicy> desiredPolicies(const NbSnapshot& nb, const ReconcileConfig& config) {
  std::vector<DesiredPolicy> out;
  for (const auto& node : nb.nodes) {
    for (int family : {4, 6}) {
      const std::string& join = family == 4 ? node.ip4 : node.ip6;
      if (join.empty()) continue;
      for (const auto& dns : config.dns_ips) {
        if (ipFamily(dns) != family) continue;
        DesiredPolicy d;
        d.node = node.name;
        d.family = family;
        d.dns_ip = dns;
        d.match = policyMatch(node.name, family, dns);
        d.nexthop = join;
        d.external_ids = policyExternalIds(node.name, family);
        out.push_back(std::move(d));
      }
    }
  }
  return out;
}

bool policyMatches(const Policy& existing, const DesiredPolicy& desired, int64_t priority) {
  if (existing.priority != priority || existing.action != "reroute" ||
      existing.match != desired.match)
    return false;
  if (existing.nexthops != std::vector<std::string>{desired.nexthop}) return false;
  if (existing.nexthop.has_value()) return false;
  for (const auto& [k, v] : desired.external_ids) {
    auto it = existing.external_ids.find(k);
    if (it == existing.external_ids.end() || it->second != v) return false;
  }
  return true;
}

Plan computePlan(const NbSnapshot& nb, const ReconcileConfig& config) {
  Plan plan;
  const auto desired = desiredPolicies(nb, config);
  std::vector<bool> satisfied(desired.size(), false);
  // Without the node switch there is no node list to compare against: a wrong --node-switch must
  // not look like "every node is gone" and wipe the policies. Leave them alone (check reports it).
  for (const auto& p : nb.node_switch_found ? nb.policies : std::vector<Policy>{}) {
    if (!isOwned(p)) continue;
    bool keep = false;
    for (std::size_t i = 0; i < desired.size(); ++i) {
      // The first exact match is kept; later exact duplicates are deleted.
      // A row the node's fail-over agent rerouted to neighbours counts as the desired one: `run`
      // must not fight the agent (see failover.h for the row protocol).
      if (!satisfied[i] && (policyMatches(p, desired[i], config.priority) ||
                            failoverAcceptable(p, desired[i], config.priority, nb))) {
        satisfied[i] = true;
        keep = true;
        break;
      }
    }
    if (!keep) plan.deletes.push_back(p);
  }
  for (std::size_t i = 0; i < desired.size(); ++i) {
    if (!satisfied[i]) plan.inserts.push_back(desired[i]);
  }
  std::optional<std::string> want;
  if (!config.dns_ips.empty()) {
    std::string joined;
    for (const auto& ip : config.dns_ips) joined += (joined.empty() ? "" : ",") + ip;
    want = joined;
  }
  if (want != nb.dns_option) {
    plan.option_change = true;
    plan.option_value = want;
  }
  return plan;
}

Result<Json> buildTransaction(const Plan& plan, const NbSnapshot& nb,
                              const ReconcileConfig& config) {
  Json ops = Json::array();
  if (!plan.deletes.empty() || !plan.inserts.empty()) {
    if (!nb.router_uuid) return fail("logical router " + config.router + " not found");
    std::vector<Json> current;
    for (const auto& u : nb.router_policy_uuids) current.push_back(ovsdb::makeUuid(u));
    const Json where_router =
        Json::array({Json::array({"_uuid", "==", ovsdb::makeUuid(*nb.router_uuid)})});
    ops.push_back({{"op", "wait"},
                   {"timeout", 0},
                   {"table", "Logical_Router"},
                   {"where", where_router},
                   {"columns", Json::array({"policies"})},
                   {"until", "=="},
                   {"rows", Json::array({Json{{"policies", ovsdb::makeSet(current)}}})}});
    std::vector<Json> named;
    for (std::size_t i = 0; i < plan.inserts.size(); ++i) {
      const auto& d = plan.inserts[i];
      const std::string name = "localdns" + std::to_string(i);
      ops.push_back({{"op", "insert"},
                     {"table", "Logical_Router_Policy"},
                     {"uuid-name", name},
                     {"row",
                      {{"priority", config.priority},
                       {"match", d.match},
                       {"action", "reroute"},
                       {"nexthops", ovsdb::makeStringSet({d.nexthop})},
                       {"external_ids", ovsdb::makeStringMap(d.external_ids)}}}});
      named.push_back(ovsdb::makeNamedUuid(name));
    }
    Json mutations = Json::array();
    if (!plan.deletes.empty()) {
      std::vector<Json> del;
      for (const auto& p : plan.deletes) del.push_back(ovsdb::makeUuid(p.uuid));
      // Unreferenced Logical_Router_Policy rows (a non-root table) are garbage-collected.
      mutations.push_back(Json::array({"policies", "delete", ovsdb::makeSet(del)}));
    }
    if (!named.empty())
      mutations.push_back(Json::array({"policies", "insert", ovsdb::makeSet(named)}));
    ops.push_back({{"op", "mutate"},
                   {"table", "Logical_Router"},
                   {"where", where_router},
                   {"mutations", mutations}});
  }
  if (plan.option_change) {
    if (nb.nb_global_uuid) {
      Json mutations = Json::array(
          {Json::array({"options", "delete", ovsdb::makeStringSet({"node_local_dns_ip"})})});
      if (plan.option_value) {
        mutations.push_back(
            Json::array({"options", "insert",
                         ovsdb::makeStringMap({{"node_local_dns_ip", *plan.option_value}})}));
      }
      ops.push_back(
          {{"op", "mutate"},
           {"table", "NB_Global"},
           {"where",
            Json::array({Json::array({"_uuid", "==", ovsdb::makeUuid(*nb.nb_global_uuid)})})},
           {"mutations", mutations}});
    } else if (plan.option_value) {
      // No NB_Global row yet (ovn-northd/ovn-nbctl create it): create it, unless someone else
      // did in the meantime.
      ops.push_back({{"op", "wait"},
                     {"timeout", 0},
                     {"table", "NB_Global"},
                     {"where", Json::array()},
                     {"columns", Json::array({"_uuid"})},
                     {"until", "=="},
                     {"rows", Json::array()}});
      ops.push_back(
          {{"op", "insert"},
           {"table", "NB_Global"},
           {"row",
            {{"options", ovsdb::makeStringMap({{"node_local_dns_ip", *plan.option_value}})}}}});
    }
  }
  return ops;
}

}  // namespace nld::ovn
