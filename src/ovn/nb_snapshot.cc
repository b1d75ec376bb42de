#include "ovn/nb_snapshot.h"

#include <algorithm>

#include "ovn/ip.h"

namespace nld::ovn {

using ovsdb::column;
using ovsdb::Json;

namespace {

constexpr const char* kNodePortPrefix = "node-";

std::string str(const Json& v) { return ovsdb::optionalString(v).value_or(std::string()); }

}  // namespace

std::map<std::string, std::vector<std::string>> monitoredTables() {
  return {
      {"NB_Global", {"options"}},
      {"Logical_Router", {"name", "policies", "ports"}},
      {"Logical_Router_Policy",
       {"priority", "match", "action", "nexthops", "nexthop", "external_ids"}},
      {"Logical_Router_Port", {"name"}},
      {"Logical_Switch", {"name", "ports"}},
      {"Logical_Switch_Port", {"name", "type", "addresses", "options"}},
      {"Port_Group", {"name", "ports"}},
      {"Address_Set", {"name", "addresses"}},
  };
}

std::vector<std::string> ipsFromAddresses(const std::vector<std::string>& addresses) {
  std::vector<std::string> out;
  for (const auto& entry : addresses) {
    std::size_t pos = 0;
    while (pos < entry.size()) {
      auto end = entry.find(' ', pos);
      if (end == std::string::npos) end = entry.size();
      std::string tok = entry.substr(pos, end - pos);
      pos = end + 1;
      if (auto slash = tok.find('/'); slash != std::string::npos) tok.resize(slash);
      if (!tok.empty() && ipFamily(tok) != 0) out.push_back(tok);
    }
  }
  return out;
}

NbSnapshot buildSnapshot(const ovsdb::Replica& replica, const std::string& router,
                         const std::string& node_switch) {
  NbSnapshot s;
  const auto& lsps = replica.table("Logical_Switch_Port");
  auto lsp_ips = [&](const std::string& uuid) {
    const auto* row = replica.row("Logical_Switch_Port", uuid);
    return row ? ipsFromAddresses(ovsdb::stringSet(column(*row, "addresses")))
               : std::vector<std::string>{};
  };

  // NB_Global (a singleton; take the first row).
  for (const auto& [uuid, row] : replica.table("NB_Global")) {
    s.nb_global_uuid = uuid;
    auto opts = ovsdb::stringMap(column(row, "options"));
    if (auto it = opts.find("node_local_dns_ip"); it != opts.end()) s.dns_option = it->second;
    break;
  }

  // The cluster router, its ports and policies.
  std::set<std::string> router_port_names;
  for (const auto& [uuid, row] : replica.table("Logical_Router")) {
    if (str(column(row, "name")) != router) continue;
    s.router_uuid = uuid;
    s.router_policy_uuids = ovsdb::uuidSet(column(row, "policies"));
    for (const auto& port_uuid : ovsdb::uuidSet(column(row, "ports"))) {
      if (const auto* p = replica.row("Logical_Router_Port", port_uuid))
        router_port_names.insert(str(column(*p, "name")));
    }
    break;
  }
  for (const auto& uuid : s.router_policy_uuids) {
    const auto* row = replica.row("Logical_Router_Policy", uuid);
    if (row == nullptr) continue;
    Policy p;
    p.uuid = uuid;
    p.priority = ovsdb::integerOf(column(*row, "priority")).value_or(0);
    p.match = str(column(*row, "match"));
    p.action = str(column(*row, "action"));
    p.nexthops = ovsdb::stringSet(column(*row, "nexthops"));
    p.nexthop = ovsdb::optionalString(column(*row, "nexthop"));
    p.external_ids = ovsdb::stringMap(column(*row, "external_ids"));
    s.policies.push_back(std::move(p));
  }
  std::sort(s.policies.begin(), s.policies.end(),
            [](const Policy& a, const Policy& b) { return a.uuid < b.uuid; });

  // Switches: the node switch's node-<n> ports, and underlay switches.
  for (const auto& [uuid, row] : replica.table("Logical_Switch")) {
    const std::string name = str(column(row, "name"));
    const auto ports = ovsdb::uuidSet(column(row, "ports"));
    if (name == node_switch) {
      s.node_switch_found = true;
      for (const auto& pu : ports) {
        auto it = lsps.find(pu);
        if (it == lsps.end()) continue;
        const std::string pname = str(column(it->second, "name"));
        const std::size_t prefix_len = std::char_traits<char>::length(kNodePortPrefix);
        if (!pname.starts_with(kNodePortPrefix) || pname.size() == prefix_len) continue;
        NodeJoin n;
        n.name = pname.substr(prefix_len);
        n.port = pname;
        for (const auto& ip : lsp_ips(pu)) {
          if (ipFamily(ip) == 4 && n.ip4.empty()) n.ip4 = ip;
          if (ipFamily(ip) == 6 && n.ip6.empty()) n.ip6 = ip;
        }
        s.nodes.push_back(std::move(n));
      }
    }
    bool localnet = false;
    bool connected = false;
    for (const auto& pu : ports) {
      auto it = lsps.find(pu);
      if (it == lsps.end()) continue;
      const std::string type = str(column(it->second, "type"));
      if (type == "localnet") localnet = true;
      if (type == "router") {
        auto opts = ovsdb::stringMap(column(it->second, "options"));
        auto rp = opts.find("router-port");
        if (rp != opts.end() && router_port_names.count(rp->second) != 0) connected = true;
      }
    }
    if (localnet) s.underlay_switches.push_back(UnderlaySwitch{name, connected});
  }
  std::sort(s.nodes.begin(), s.nodes.end(),
            [](const NodeJoin& a, const NodeJoin& b) { return a.name < b.name; });
  std::sort(s.underlay_switches.begin(), s.underlay_switches.end(),
            [](const UnderlaySwitch& a, const UnderlaySwitch& b) { return a.name < b.name; });

  for (const auto& [uuid, row] : replica.table("Port_Group")) {
    auto& ips = s.port_groups[str(column(row, "name"))];
    for (const auto& pu : ovsdb::uuidSet(column(row, "ports"))) {
      for (auto& ip : lsp_ips(pu)) ips.push_back(std::move(ip));
    }
  }
  for (const auto& [uuid, row] : replica.table("Address_Set")) {
    s.address_sets[str(column(row, "name"))] = ovsdb::stringSet(column(row, "addresses"));
  }
  return s;
}

}  // namespace nld::ovn
