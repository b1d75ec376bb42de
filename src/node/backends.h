#pragma once
// The seams of the host side: what HostSetup needs from the thing that holds the local IPs
// (InterfaceManager: LinkManager over rtnetlink) and from a packet-filter backend that keeps
// node-cache's rules (RuleBackend: Iptables for one family, or Nftables). HostSetup's ordering,
// upkeep and teardown logic is unit-tested against fakes of these (tests/node/host_setup_test.cc);
// the real implementations have their own root tests in throwaway network namespaces.
//
// Thread affinity: implementations need not be thread-safe; HostSetup serialises its calls.
#include <string>
#include <vector>

#include "node/local_ip.h"

namespace nld::node {

class InterfaceManager {
 public:
  virtual ~InterfaceManager() = default;
  /// Ensures link `name` exists, carries every IP as a host prefix and is UP. False on error
  /// (logged and reported by the implementation).
  virtual bool ensureInterface(const std::string& name, const std::vector<LocalIp>& ips) = 0;
  /// Removes the link if it is ours, else only our addresses from it.
  virtual bool teardown(const std::string& name, const std::vector<LocalIp>& ips) = 0;
};

class RuleBackend {
 public:
  virtual ~RuleBackend() = default;
  /// Leaves the rules as wanted. @return how many rules were written (0: already right), or -1
  /// on error (logged and reported by the implementation).
  virtual int ensure() = 0;
  /// Removes every rule of ours. @return true if none remain.
  virtual bool teardown() = 0;
};

}  // namespace nld::node
