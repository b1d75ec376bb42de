#include "ovn/checks.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "ovn/failover.h"
#include "ovn/ip.h"

namespace nld::ovn {

namespace {

// IPs that a match operand stands for: "$pg_ip4" → the port group's IPs, "$as" → the address
// set, a literal → itself. nullopt if unknown.
std::optional<std::vector<std::string>> resolveOperand(const NbSnapshot& nb,
                                                       const std::string& op) {
  if (op.empty()) return std::nullopt;
  if (op[0] != '$') return std::vector<std::string>{op};
  const std::string name = op.substr(1);
  if (auto it = nb.address_sets.find(name); it != nb.address_sets.end()) return it->second;
  for (const char* suffix : {"_ip4", "_ip6"}) {
    if (name.ends_with(suffix)) {
      auto it = nb.port_groups.find(name.substr(0, name.size() - 4));
      if (it != nb.port_groups.end()) return it->second;
    }
  }
  return std::nullopt;
}

bool anyContained(const std::vector<std::string>& ips, const std::vector<std::string>& cidrs) {
  for (const auto& ip : ips) {
    for (const auto& c : cidrs) {
      if (ipInCidr(ip, c)) return true;
    }
  }
  return false;
}

}  // namespace

const char* kindName(Finding::Kind kind) {
  switch (kind) {
    case Finding::Kind::kRouterMissing:
      return "router_missing";
    case Finding::Kind::kNodeSwitchMissing:
      return "node_switch_missing";
    case Finding::Kind::kPortGroupMissing:
      return "port_group_missing";
    case Finding::Kind::kPolicyMissing:
      return "policy_missing";
    case Finding::Kind::kPolicyWrong:
      return "policy_wrong";
    case Finding::Kind::kOptionWrong:
      return "option_wrong";
    case Finding::Kind::kUnderlayUnconnected:
      return "underlay_unconnected";
    case Finding::Kind::kShadowingPolicy:
      return "shadowing_policy";
  }
  return "unknown";
}

std::vector<std::string> matchOperands(const std::string& match, const std::string& field) {
  // Hand-written scanner (std::regex is slow and trips GCC 12 warnings under the sanitizers).
  // Recognises "<ip4|ip6|ip>.<field> == X" with X a token or a "{a, b}" set, e.g.
  // "ip4.src == $node.a_ip4", "ip.src == {10.0.0.0/8, $as}".
  std::vector<std::string> out;
  const std::string suffix = "." + field;
  std::size_t pos = 0;
  while ((pos = match.find(suffix, pos)) != std::string::npos) {
    const std::size_t field_end = pos + suffix.size();
    const bool prefix_ok =
        (pos >= 3 &&
         (match.compare(pos - 3, 3, "ip4") == 0 || match.compare(pos - 3, 3, "ip6") == 0) &&
         (pos == 3 || !std::isalnum(static_cast<unsigned char>(match[pos - 4])))) ||
        (pos >= 2 && match.compare(pos - 2, 2, "ip") == 0 &&
         (pos == 2 || !std::isalnum(static_cast<unsigned char>(match[pos - 3]))));
    pos = field_end;
    if (!prefix_ok) continue;
    std::size_t i = field_end;
    while (i < match.size() && match[i] == ' ') ++i;
    if (match.compare(i, 2, "==") != 0) continue;
    i += 2;
    while (i < match.size() && match[i] == ' ') ++i;
    std::string value;
    if (i < match.size() && match[i] == '{') {
      const std::size_t close = match.find('}', i);
      if (close == std::string::npos) continue;
      value = match.substr(i + 1, close - i - 1);
    } else {
      std::size_t j = i;
      while (j < match.size() && match[j] != ' ' && match[j] != '&' && match[j] != '|' &&
             match[j] != ')')
        ++j;
      value = match.substr(i, j - i);
    }
    std::string tok;
    for (char c : value + " ") {
      if (c == ' ' || c == ',' || c == '"') {
        if (!tok.empty()) out.push_back(tok);
        tok.clear();
      } else {
        tok.push_back(c);
      }
    }
  }
  return out;
}

std::vector<Finding> runChecks(const NbSnapshot& nb, const ReconcileConfig& config,
                               const Plan& plan) {
  std::vector<Finding> out;
  using K = Finding::Kind;
  if (!nb.router_uuid)
    out.push_back(
        {K::kRouterMissing, config.router, "logical router " + config.router + " not found"});
  if (!nb.node_switch_found) {
    out.push_back({K::kNodeSwitchMissing, config.node_switch,
                   "logical switch " + config.node_switch + " not found"});
  }
  for (const auto& n : nb.nodes) {
    const std::string pg = portGroupName(n.name);
    if (nb.port_groups.count(pg) == 0 && !config.dns_ips.empty()) {
      out.push_back(
          {K::kPortGroupMissing, n.name,
           fmt::format("node {}: port group {} does not exist (its policies cannot match)", n.name,
                       pg)});
    }
  }
  for (const auto& d : plan.inserts) {
    out.push_back({K::kPolicyMissing, d.node,
                   fmt::format("node {}: missing policy priority {} match \"{}\" reroute {}",
                               d.node, config.priority, d.match, d.nexthop)});
  }
  for (const auto& p : plan.deletes) {
    out.push_back(
        {K::kPolicyWrong, p.uuid,
         fmt::format("policy {} (node {}, priority {}, match \"{}\") is stale or wrong", p.uuid,
                     p.external_ids.count("node") ? p.external_ids.at("node") : "?", p.priority,
                     p.match)});
  }
  if (plan.option_change) {
    out.push_back(
        {K::kOptionWrong, "NB_Global",
         fmt::format("NB_Global options:node_local_dns_ip is \"{}\", want \"{}\"",
                     nb.dns_option.value_or("<unset>"), plan.option_value.value_or("<unset>"))});
  }
  for (const auto& sw : nb.underlay_switches) {
    if (!sw.connected_to_router) {
      out.push_back({K::kUnderlayUnconnected, sw.name,
                     fmt::format("underlay switch {} has a localnet port but no router port on {} "
                                 "(u2oInterconnection off): its pods cannot reach node-local DNS",
                                 sw.name, config.router)});
    }
  }
  // Higher-priority policies whose source overlaps a node's pods and whose destination (if
  // constrained and resolvable) includes a DNS IP: they win over the local-DNS reroute.
  if (!config.dns_ips.empty()) {
    for (const auto& p : nb.policies) {
      if (p.priority <= config.priority || isOwned(p)) continue;
      const auto src = matchOperands(p.match, "src");
      if (src.empty()) continue;
      const auto dst = matchOperands(p.match, "dst");
      if (!dst.empty()) {
        bool unknown = false;
        std::vector<std::string> dst_ips;
        for (const auto& d : dst) {
          auto r = resolveOperand(nb, d);
          if (!r) {
            unknown = true;
            break;
          }
          dst_ips.insert(dst_ips.end(), r->begin(), r->end());
        }
        if (!unknown && !anyContained(config.dns_ips, dst_ips)) continue;
      }
      std::set<std::string> hit_nodes;
      for (const auto& n : nb.nodes) {
        const std::string pg = portGroupName(n.name);
        auto pg_it = nb.port_groups.find(pg);
        for (const auto& s : src) {
          if (s == "$" + pg + "_ip4" || s == "$" + pg + "_ip6") {
            hit_nodes.insert(n.name);
            continue;
          }
          auto r = resolveOperand(nb, s);
          if (r && pg_it != nb.port_groups.end() && anyContained(pg_it->second, *r))
            hit_nodes.insert(n.name);
        }
      }
      for (const auto& node : hit_nodes) {
        out.push_back(
            {K::kShadowingPolicy, p.uuid,
             fmt::format(
                 "policy {} (priority {} > {}, action {}, match \"{}\") catches pods of node {} "
                 "before the node-local DNS reroute",
                 p.uuid, p.priority, config.priority, p.action, p.match, node)});
      }
    }
  }
  return out;
}

std::string formatReport(const NbSnapshot& nb, const ReconcileConfig& config,
                         const std::vector<Finding>& findings) {
  std::string out;
  out +=
      fmt::format("router {}: {}\n", config.router, nb.router_uuid ? *nb.router_uuid : "NOT FOUND");
  out +=
      fmt::format("NB_Global options:node_local_dns_ip: {}\n", nb.dns_option.value_or("<unset>"));
  out += fmt::format("nodes on switch {}: {}\n", config.node_switch, nb.nodes.size());
  for (const auto& n : nb.nodes) {
    out += fmt::format("  node {} join {}{}{} port group {}\n", n.name, n.ip4.empty() ? "-" : n.ip4,
                       n.ip6.empty() ? "" : " ", n.ip6, portGroupName(n.name));
    for (const auto& p : nb.policies) {
      auto it = p.external_ids.find("node");
      if (!isOwned(p) || it == p.external_ids.end() || it->second != n.name) continue;
      std::string hops;
      for (const auto& h : p.nexthops) hops += (hops.empty() ? "" : ",") + h;
      std::string state;
      if (isFailedOver(p)) {
        // Accepted, not a problem: the node's agent found its cache dead (see failover.h).
        auto to = p.external_ids.find(kFailoverToKey);
        state = to == p.external_ids.end() || to->second.empty()
                    ? " [cache unhealthy, no healthy neighbour]"
                    : " [cache unhealthy, failed over to " + to->second + "]";
      }
      out += fmt::format("    policy {} priority {} match \"{}\" {} {}{}\n", p.uuid, p.priority,
                         p.match, p.action, hops, state);
    }
  }
  if (findings.empty()) {
    out += "OK: no problems found\n";
  } else {
    out += fmt::format("{} problem(s):\n", findings.size());
    for (const auto& f : findings) out += fmt::format("  [{}] {}\n", kindName(f.kind), f.message);
  }
  return out;
}

}  // namespace nld::ovn
