#pragma once
// node-cache's DNS traffic rules as a native nftables table (-firewall=nftables): our own table
// `inet node-local-dns`, written over netlink (libnftnl messages, libmnl socket), never touching
// any other table. The rules are the iptables backend's list (nodeLocalDnsRules, iptables.h)
// translated one to one, so the two backends cannot drift:
//   raw/PREROUTING  → chain raw-prerouting  (hook prerouting, priority raw = -300)
//   raw/OUTPUT      → chain raw-output      (hook output,     priority raw = -300)
//   filter/INPUT    → chain filter-input    (hook input,      priority filter = 0)
//   filter/OUTPUT   → chain filter-output   (hook output,     priority filter = 0)
//   NOTRACK → `notrack`, ACCEPT → `accept`; `-d/-s IP` → `ip|ip6 daddr|saddr IP`;
//   `-p P --dport/--sport N` → `P dport|sport N`; the comment → the rule's comment (userdata).
// The raw priority (-300) runs before conntrack (-200), so the traffic is untracked and never
// reaches NAT hooks: a kube-proxy nftables-mode DNAT of the kube-dns IP (table `ip kube-proxy`,
// dstnat -100) does not apply to a notracked packet, just as with the iptables NOTRACK rules.
//
// ensure(): dumps our table's chains and rules and compares them with the wanted ones; when
// anything differs (table deleted, a chain or rule removed or edited, an extra rule) the whole
// table is replaced in ONE netlink transaction (add table; delete table; add table, chains and
// rules), so the ruleset never holds half of it. teardown(): deletes our table (absent = done).
//
// Errors are logged and reported through the callback with errortype "iptables" (the label set
// of coredns_nodecache_setup_errors_total stays the upstream's; see docs/operator-guide.md).
// Thread affinity: not thread-safe; one thread at a time (HostSetup serialises its calls). Each
// call opens its own netlink socket with a receive timeout, so nothing blocks unbounded.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "node/backends.h"
#include "node/iptables.h"
#include "node/local_ip.h"

namespace nld::node {

inline constexpr std::string_view kNftTableName = "node-local-dns";

/// One translated rule: the nft chain it lives in and its `nft` text (for logs and tests).
struct NftRuleSpec {
  std::string chain;  ///< "raw-prerouting", "raw-output", "filter-input" or "filter-output"
  std::string text;   ///< e.g. `ip daddr 169.254.20.10 udp dport 53 notrack comment "..."`
};

/// The nft form of every rule (same order); an error for a rule the translation does not know (a
/// table/chain/target outside the four chains above), which is a programming error.
Result<std::vector<NftRuleSpec>> nftRuleSpecs(const std::vector<IptablesRule>& rules);

struct NftablesSettings {
  std::string table = std::string(kNftTableName);               ///< name of our inet table
  std::chrono::milliseconds timeout = std::chrono::seconds(5);  ///< per netlink receive
};

class Nftables final : public RuleBackend {
 public:
  using ErrorCallback = std::function<void(std::string_view errortype)>;

  Nftables(NftablesSettings settings, std::vector<IptablesRule> rules, ErrorCallback on_error = {});

  /// Leaves our table exactly as wanted. @return 0 if it already was, the number of rules written
  /// when it was (re)created, -1 on error (logged and reported).
  int ensure() override;
  /// Deletes our table. @return true if it is gone (or was never there).
  bool teardown() override;

  const std::vector<IptablesRule>& rules() const { return rules_; }
  const std::string& table() const { return settings_.table; }
  const std::string& lastError() const { return last_error_; }

 private:
  bool fail(std::string message);
  int failCount(std::string message);  // fail(), then -1 (ensure's error value)

  NftablesSettings settings_;
  std::vector<IptablesRule> rules_;
  ErrorCallback on_error_;
  std::string last_error_;
};

/// Names of the nftables tables of every family, as (family, name), family being "ip", "ip6",
/// "inet", "arp", "bridge" or "netdev"; an error if the kernel cannot be asked.
Result<std::vector<std::pair<std::string, std::string>>> listNftTables();

/// True if an executable `name` is in one of PATH's directories (PATH unset: /usr/sbin:/sbin:...).
bool binaryOnPath(std::string_view name);

/// The backend -firewall asks for: iptables and nftables as given; auto resolves to nftables when a
/// `kube-proxy` table exists in family ip, ip6 or inet (kube-proxy's nftables mode) or when no
/// iptables binary is on PATH, else to iptables. `reason` says why (logged at start-up).
struct FirewallChoice {
  Firewall firewall = Firewall::kIptables;
  std::string reason;
};
FirewallChoice chooseFirewall(Firewall requested);

/// chooseFirewall's decision from its inputs (separate for unit tests). `tables_error` non-empty
/// means the tables could not be listed (then only the PATH test decides).
FirewallChoice chooseFirewallFrom(Firewall requested,
                                  const std::vector<std::pair<std::string, std::string>>& tables,
                                  const std::string& tables_error, bool iptables_on_path);

}  // namespace nld::node
