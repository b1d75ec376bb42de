#pragma once
// The node-local interface (kubernetes/dns pkg/netif) over rtnetlink with libmnl: create a `dummy`
// link holding one /32 or /128 per local IP, bring it UP, and remove it (or only our addresses) at
// teardown. libmnl rather than shelling out to `ip`: no process per periodic check, and exact errno
// values (EOPNOTSUPP when the kernel lacks CONFIG_DUMMY, EEXIST for an address already present).
//
// Ownership: a link we created, or a pre-existing link of kind `dummy` with our name (left by a
// previous instance), is ours and teardown() deletes it. Any other pre-existing link (a veth, the
// kube-ipvs0 device, ...) is not: teardown() removes only the addresses we manage from it.
//
// Thread affinity: not thread-safe; one thread at a time (HostSetup serialises its calls). Each
// call opens its own netlink socket with a 5 s receive timeout, so nothing here can hang.
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "node/backends.h"
#include "node/local_ip.h"

namespace nld::node {

/// What RTM_GETLINK says about a link.
struct LinkInfo {
  int index = 0;
  std::string kind;  ///< IFLA_INFO_KIND ("dummy", "veth", ...); "" for kind-less devices
  bool up = false;   ///< IFF_UP
};

class LinkManager final : public InterfaceManager {
 public:
  /// Receives "interface_add" (creation failed) or "interface_check" (lookup/address/up failed).
  using ErrorCallback = std::function<void(std::string_view errortype)>;

  explicit LinkManager(ErrorCallback on_error = {});

  /// Ensures link `name` exists (creating kind `dummy` if missing), carries every IP as a host
  /// prefix (an existing address is fine) and is UP. IPv6 addresses are added with IFA_F_NODAD so
  /// they are usable (bindable) at once. Logs `Added interface - <name>` on creation.
  /// @return true on success; false after logging and reporting the error.
  bool ensureInterface(const std::string& name, const std::vector<LocalIp>& ips) override;
  /// Deletes link `name`. Missing link → true.
  bool removeInterface(const std::string& name);
  /// Removes the given host addresses from link `name` (absent ones are fine).
  bool removeAddresses(const std::string& name, const std::vector<LocalIp>& ips);
  /// removeInterface() if the link is ours (see the file comment), else removeAddresses().
  bool teardown(const std::string& name, const std::vector<LocalIp>& ips) override;

  /// Looks up a link; nullopt if it does not exist (or on error: see lastError()).
  std::optional<LinkInfo> lookup(const std::string& name);
  /// The addresses on link `name` as "ip/prefix" strings (canonical text).
  std::vector<std::string> addresses(const std::string& name);
  /// True if teardown() would delete the link.
  bool ownsLink(const std::string& name);

  /// The message of the last error (empty if none).
  const std::string& lastError() const { return last_error_; }

 private:
  bool fail(std::string_view errortype, std::string message);

  ErrorCallback on_error_;
  std::set<std::string> created_;  // links created by this process
  std::string last_error_;
};

}  // namespace nld::node
