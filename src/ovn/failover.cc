#include "ovn/failover.h"

#include <algorithm>
#include <set>

#include "common/hash.h"
#include "ovn/ip.h"

namespace nld::ovn {

using ovsdb::Json;

bool isFailedOver(const Policy& policy) {
  auto it = policy.external_ids.find(kFailoverStateKey);
  return it != policy.external_ids.end() && it->second == kFailoverStateUnhealthy;
}

namespace {

const std::string& joinOf(const NodeJoin& n, int family) { return family == 6 ? n.ip6 : n.ip4; }

bool baseShapeMatches(const Policy& existing, const DesiredPolicy& desired, int64_t priority) {
  if (existing.priority != priority || existing.action != "reroute" ||
      existing.match != desired.match)
    return false;
  if (existing.nexthop.has_value()) return false;
  for (const auto& [k, v] : desired.external_ids) {
    auto it = existing.external_ids.find(k);
    if (it == existing.external_ids.end() || it->second != v) return false;
  }
  return true;
}

std::string joinComma(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

bool failoverAcceptable(const Policy& existing, const DesiredPolicy& desired, int64_t priority,
                        const NbSnapshot& nb) {
  if (!isFailedOver(existing) || !baseShapeMatches(existing, desired, priority)) return false;
  if (existing.nexthops.empty()) return false;
  std::set<std::string> joins;
  for (const auto& n : nb.nodes) {
    if (!joinOf(n, desired.family).empty()) joins.insert(joinOf(n, desired.family));
  }
  return std::all_of(existing.nexthops.begin(), existing.nexthops.end(),
                     [&](const std::string& h) { return joins.count(h) != 0; });
}

const char* healthName(Health h) {
  switch (h) {
    case Health::kUnknown:
      return "unknown";
    case Health::kHealthy:
      return "healthy";
    case Health::kUnhealthy:
      return "unhealthy";
  }
  return "?";
}

bool HealthTracker::observe(TimePoint now, bool ok) {
  if (ok) {
    fails_ = 0;
    if (oks_ == 0) first_ok_ = now;
    ++oks_;
  } else {
    oks_ = 0;
    ++fails_;
  }
  const Health before = state_;
  if (state_ != Health::kUnhealthy && fails_ >= options_.fall) {
    // A healthy period after a recovery shorter than stable_period means the cache is flapping:
    // lengthen the hold. (The first healthy period after the agent started is no recovery.)
    if (state_ == Health::kHealthy && recovered_ && now - since_ < options_.stable_period) {
      hold_ = std::min(options_.hold_max, hold_ * 2);
    } else {
      hold_ = options_.hold_base;
    }
    state_ = Health::kUnhealthy;
    since_ = now;
  } else if (state_ != Health::kHealthy && oks_ >= options_.rise &&
             now - first_ok_ >= options_.rise_min_span &&
             (state_ == Health::kUnknown || now - since_ >= hold_)) {
    recovered_ = state_ == Health::kUnhealthy;
    state_ = Health::kHealthy;
    since_ = now;
  }
  return state_ != before;
}

uint64_t rendezvousScore(std::string_view self, std::string_view candidate) {
  // FNV-1a over "self\0candidate", then the splitmix64 finaliser to spread FNV's weak low bits.
  uint64_t h = kFnvOffset;
  for (unsigned char c : self) h = fnv1aStep(h, c);
  h = fnv1aStep(h, 0);
  for (unsigned char c : candidate) h = fnv1aStep(h, c);
  return mixFinal(h);
}

std::vector<std::string> rendezvousPick(std::string_view self, std::vector<std::string> candidates,
                                        std::size_t k) {
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  std::vector<std::pair<uint64_t, std::string>> scored;
  scored.reserve(candidates.size());
  for (auto& c : candidates) scored.emplace_back(rendezvousScore(self, c), std::move(c));
  std::sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<std::string> out;
  for (std::size_t i = 0; i < scored.size() && i < k; ++i)
    out.push_back(std::move(scored[i].second));
  return out;
}

std::vector<std::string> healthyNeighbours(const NbSnapshot& nb, const ReconcileConfig& config,
                                           const std::string& self, const std::string& dns_ip) {
  const int family = ipFamily(dns_ip);
  std::vector<std::string> out;
  for (const auto& n : nb.nodes) {
    if (n.name == self || joinOf(n, family).empty()) continue;
    const std::string match = policyMatch(n.name, family, dns_ip);
    for (const auto& p : nb.policies) {
      auto node = p.external_ids.find("node");
      if (!isOwned(p) || node == p.external_ids.end() || node->second != n.name ||
          p.match != match || p.priority != config.priority || p.action != "reroute") {
        continue;
      }
      if (!isFailedOver(p) && p.nexthops == std::vector<std::string>{joinOf(n, family)}) {
        out.push_back(n.name);
        break;
      }
    }
  }
  return out;
}

AgentPlan planAgent(const NbSnapshot& nb, const AgentConfig& config,
                    const std::map<std::string, Health>& health) {
  AgentPlan plan;
  const auto self = std::find_if(nb.nodes.begin(), nb.nodes.end(),
                                 [&](const NodeJoin& n) { return n.name == config.node; });
  if (self == nb.nodes.end()) {
    plan.notes.push_back("node " + config.node + " has no port node-" + config.node +
                         " on switch " + config.reconcile.node_switch + " (yet)");
    return plan;
  }
  for (const auto& dns_ip : config.reconcile.dns_ips) {
    auto h = health.find(dns_ip);
    if (h == health.end() || h->second == Health::kUnknown) continue;
    const int family = ipFamily(dns_ip);
    const std::string& own_join = joinOf(*self, family);
    if (own_join.empty()) {
      plan.notes.push_back("node " + config.node + " has no IPv" + std::to_string(family) +
                           " join IP: " + dns_ip + " is not rerouted on this node");
      continue;
    }
    const std::string match = policyMatch(config.node, family, dns_ip);
    std::vector<const Policy*> own;
    for (const auto& p : nb.policies) {
      auto node = p.external_ids.find("node");
      if (isOwned(p) && node != p.external_ids.end() && node->second == config.node &&
          p.match == match && p.priority == config.reconcile.priority && p.action == "reroute") {
        own.push_back(&p);
      }
    }
    if (own.empty()) {
      plan.notes.push_back("no policy \"" + match + "\" on " + config.reconcile.router +
                           " yet (run or kube-ovn creates it; the agent only updates it)");
      continue;
    }
    std::vector<std::string> nexthops;
    std::vector<std::string> picked;
    if (h->second == Health::kHealthy) {
      nexthops = {own_join};
    } else {
      picked =
          rendezvousPick(config.node, healthyNeighbours(nb, config.reconcile, config.node, dns_ip),
                         config.max_neighbours);
      for (const auto& name : picked) {
        for (const auto& n : nb.nodes) {
          if (n.name == name) nexthops.push_back(joinOf(n, family));
        }
      }
      // No healthy neighbour: the own (dead) cache is still the best bet -- it may come back, and
      // pointing at another dead cache gains nothing. The marker stays so others skip this node.
      if (nexthops.empty()) nexthops = {own_join};
    }
    std::sort(nexthops.begin(), nexthops.end());
    for (const Policy* p : own) {
      auto ids = p->external_ids;
      ids.erase(kFailoverStateKey);
      ids.erase(kFailoverToKey);
      std::string describe = "healthy: nexthop " + own_join;
      if (h->second == Health::kUnhealthy) {
        ids[kFailoverStateKey] = kFailoverStateUnhealthy;
        ids[kFailoverToKey] = joinComma(picked);
        describe = picked.empty() ? "unhealthy, no healthy neighbour: nexthop stays " + own_join
                                  : "unhealthy: failed over to " + joinComma(picked) + " (" +
                                        joinComma(nexthops) + ")";
      }
      auto current = p->nexthops;
      std::sort(current.begin(), current.end());
      if (current == nexthops && ids == p->external_ids && !p->nexthop.has_value()) continue;
      plan.updates.push_back(RowUpdate{*p, nexthops, std::move(ids), dns_ip + " " + describe});
    }
  }
  return plan;
}

Json buildAgentTransaction(const std::vector<RowUpdate>& updates) {
  Json ops = Json::array();
  for (const auto& u : updates) {
    const Json where = Json::array({Json::array({"_uuid", "==", ovsdb::makeUuid(u.current.uuid)})});
    ops.push_back(
        {{"op", "wait"},
         {"timeout", 0},
         {"table", "Logical_Router_Policy"},
         {"where", where},
         {"columns", Json::array({"nexthops", "external_ids"})},
         {"until", "=="},
         {"rows",
          Json::array({Json{{"nexthops", ovsdb::makeStringSet(u.current.nexthops)},
                            {"external_ids", ovsdb::makeStringMap(u.current.external_ids)}}})}});
    ops.push_back({{"op", "update"},
                   {"table", "Logical_Router_Policy"},
                   {"where", where},
                   {"row",
                    {{"nexthops", ovsdb::makeStringSet(u.nexthops)},
                     {"nexthop", ovsdb::makeSet({})},
                     {"external_ids", ovsdb::makeStringMap(u.external_ids)}}}});
  }
  return ops;
}

}  // namespace nld::ovn
