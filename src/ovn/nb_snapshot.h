#pragma once
// A typed, read-only view of the parts of the OVN Northbound replica the local-DNS reconciler
// uses: the cluster router and its policies, the node (join) switch and its node-<n> ports, port
// groups, address sets, NB_Global options and underlay (localnet) switches. Built from scratch
// from the replica on every reconcile pass (full recompute; the NB slice involved is small).
//
// Thread affinity: plain data; built and used on the controller thread.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ovsdb/replica.h"

namespace nld::ovn {

/// A node as seen on the node switch: port `node-<name>` with its join IPs.
struct NodeJoin {
  std::string name;  ///< Kubernetes node name (port name without "node-")
  std::string port;  ///< logical switch port name
  std::string ip4;   ///< join IPv4 address, empty if none
  std::string ip6;   ///< join IPv6 address, empty if none
};

/// A Logical_Router_Policy row referenced by the cluster router.
struct Policy {
  std::string uuid;
  int64_t priority = 0;
  std::string match;
  std::string action;
  std::vector<std::string> nexthops;
  std::optional<std::string> nexthop;  ///< deprecated single-nexthop column
  std::map<std::string, std::string> external_ids;
};

/// A logical switch with at least one localnet port (an underlay subnet).
struct UnderlaySwitch {
  std::string name;
  /// True if one of its router-type ports peers with a port of the cluster router
  /// (u2oInterconnection on).
  bool connected_to_router = false;
};

struct NbSnapshot {
  std::optional<std::string> router_uuid;        ///< cluster router, if it exists
  std::vector<std::string> router_policy_uuids;  ///< the router's policies column, as stored
  std::vector<Policy> policies;                  ///< rows of those policies (sorted by uuid)
  bool node_switch_found = false;
  std::vector<NodeJoin> nodes;  ///< sorted by name
  /// Port group name → IPs of its member ports.
  std::map<std::string, std::vector<std::string>> port_groups;
  /// Address_Set name → addresses.
  std::map<std::string, std::vector<std::string>> address_sets;
  std::optional<std::string> nb_global_uuid;
  std::optional<std::string> dns_option;  ///< NB_Global.options:node_local_dns_ip
  std::vector<UnderlaySwitch> underlay_switches;
};

/// The tables and columns the controller monitors (for ovsdb::ClientOptions::monitor).
std::map<std::string, std::vector<std::string>> monitoredTables();

/// Extracts IP addresses from Logical_Switch_Port.addresses entries ("MAC IP [IP...]"; entries
/// like "router", "unknown", "dynamic" have none). A "/prefix" suffix is stripped.
std::vector<std::string> ipsFromAddresses(const std::vector<std::string>& addresses);

/// Builds the snapshot from the replica. Missing router or switch leave the fields empty.
NbSnapshot buildSnapshot(const ovsdb::Replica& replica, const std::string& router,
                         const std::string& node_switch);

}  // namespace nld::ovn
